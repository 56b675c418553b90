package actions

import (
	"errors"
	"fmt"
	"strings"
)

// ErrRefused marks an action's refusal: a safety check failed before the action
// changed anything. Reports can tell "refused, nothing changed" from "failed part
// way" with errors.Is.
var ErrRefused = errors.New("refused, nothing was changed")

// refuse builds the error of an action that refuses, naming every problem found
// (not just the first: an operator fixes them all in one go).
func refuse(action, name string, problems []string) error {
	return fmt.Errorf("%s %q %w: %s", action, name, ErrRefused, strings.Join(problems, "; "))
}
