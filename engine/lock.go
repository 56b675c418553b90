package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Lock is a coordination.k8s.io Lease held for the duration of a run, scoped to what
// the run mutates (e.g. this cluster's Calico IPAM), whatever store the journal uses.
// It is renewed in the background; the moment a renewal fails or the lease could
// have expired, the run's context is cancelled and Fence refuses journal writes, so a
// holder that was paused (SIGSTOP) or partitioned past its lease cannot write after
// another run took over. Cancelling the context alone is not enough: a holder that
// wakes up from SIGSTOP runs on concurrently with its renewal loop, and its next
// request may leave before the loop cancels anything; a WriteFence armed with Fence
// refuses every write in the client's transport (see WriteFence).
type Lock struct {
	Client        kubernetes.Interface
	Namespace     string
	Name          string
	Holder        string
	LeaseDuration time.Duration // default 30s
	RenewEvery    time.Duration // default LeaseDuration/3
	// Notify, if set, is told when Acquire waits (watching an expired-looking
	// lease before taking it over).
	Notify func(msg string)

	clock     clock.Clock // the real clock; tests step a fake one
	ll        *resourcelock.LeaseLock
	mu        sync.Mutex
	lastRenew time.Time // monotonic: local time of the last successful write
	lostErr   error
	stop      context.CancelFunc
	done      sync.WaitGroup // the renewal loop and the lease watch
}

// HeldError says who holds the lock.
type HeldError struct {
	Lease     string
	Holder    string
	RenewedAt time.Time
	ExpiresIn time.Duration
	// Renewed: the lease looked expired, but changed while this run watched it
	// (its holder is alive, its clock behind ours).
	Renewed bool
}

func (e *HeldError) Error() string {
	if e.Renewed {
		return fmt.Sprintf("lock %s is held by %q: its lease looked expired but was renewed while this run watched it (the holder is alive; is its clock behind?)",
			e.Lease, e.Holder)
	}
	return fmt.Sprintf("lock %s is held by %q (renewed %s ago, expires in %s unless renewed); wait for it (--lock-timeout), or if that run is gone for sure, `runbook unlock`",
		e.Lease, e.Holder, time.Since(e.RenewedAt).Round(time.Second), e.ExpiresIn.Round(time.Second))
}

// ErrFenced is returned by Fence once the lock may no longer be ours.
var ErrFenced = errors.New("lost the run lock: refusing to write")

// DefaultHolder identifies this process: user@host pid N and a random nonce.
// user@host pid alone is not unique: two containers started from one image both
// run as pid 1 under the same hostname, and each would read the other's lease as
// its own.
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	var nonce [4]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%s@%s pid %d #%s", name, host, os.Getpid(), hex.EncodeToString(nonce[:]))
}

func (l *Lock) defaults() {
	if l.LeaseDuration == 0 {
		l.LeaseDuration = 30 * time.Second
	}
	if l.RenewEvery == 0 {
		l.RenewEvery = l.LeaseDuration / 3
	}
	if l.clock == nil {
		l.clock = clock.RealClock{}
	}
	if l.ll == nil {
		l.ll = &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name},
			Client:     l.Client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: l.Holder},
			Labels:     map[string]string{"app.kubernetes.io/managed-by": "runbook"},
		}
	}
}

func (l *Lock) describe() string { return l.Namespace + "/" + l.Name }

// renewDeadline is how long after its last successful renewal the lock still
// counts as ours: less than the lease by half a renewal period. Other runs take
// over once the lease duration has passed since the renew time written in the
// lease (read before the renewal's request was sent, so never later than ours);
// the margin covers a write that passes the fence just before the deadline and
// the clock skew between machines, as client-go leaderelection's RenewDeadline
// does.
func (l *Lock) renewDeadline() time.Duration { return l.LeaseDuration - l.RenewEvery/2 }

// Acquire takes the lease, or takes over an expired one. A lease held by someone
// else fails fast with a *HeldError naming the holder.
//
// Expiry is never judged by wall clocks alone: a lease whose renew time looks old
// may belong to a live holder whose clock runs behind ours. Such a lease is taken
// over only after its record stayed unchanged for a full lease duration measured
// on the local monotonic clock (client-go leader election's observedTime rule): a
// live holder renews within that time, and Acquire then refuses.
func (l *Lock) Acquire(ctx context.Context) error {
	l.defaults()
	cur, raw, err := l.ll.Get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		if err := l.ll.Create(ctx, l.record(0)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return l.heldBy(ctx)
			}
			return fmt.Errorf("create lock %s: %w", l.describe(), err)
		}
	case err != nil:
		return fmt.Errorf("read lock %s: %w", l.describe(), err)
	default:
		if cur.HolderIdentity != "" && cur.HolderIdentity != l.Holder {
			if time.Now().Before(expiry(cur)) {
				return l.heldError(cur, false)
			}
			if cur, err = l.confirmAbandoned(ctx, cur, raw); err != nil {
				return err
			}
		}
		// Update carries the resourceVersion of the last read: two runs taking
		// over the same expired lease cannot both win.
		if err := l.ll.Update(ctx, l.record(cur.LeaderTransitions+1)); err != nil {
			if apierrors.IsConflict(err) {
				return l.heldBy(ctx)
			}
			return fmt.Errorf("take over lock %s: %w", l.describe(), err)
		}
	}
	l.mu.Lock()
	l.lastRenew, l.lostErr = l.clock.Now(), nil
	l.mu.Unlock()
	return nil
}

// record is the lease record this holder writes, renewed now. The renewal counts
// from before the request: the renew time written is never later than the local
// time the fence counts from.
func (l *Lock) record(transitions int) resourcelock.LeaderElectionRecord {
	now := metav1.NewTime(time.Now())
	return resourcelock.LeaderElectionRecord{HolderIdentity: l.Holder, LeaseDurationSeconds: int(l.LeaseDuration.Seconds()),
		AcquireTime: now, RenewTime: now, LeaderTransitions: transitions}
}

// observeEvery is how often an expired-looking lease is read while it is watched.
const observeEvery = time.Second

// confirmAbandoned watches a lease that looks expired by its renew time until its
// record has stayed byte-for-byte unchanged for a full lease duration on the local
// monotonic clock, and returns the last record read (whose resourceVersion the
// takeover's update carries). A change — a renewal, a release, another taker —
// refuses with a *HeldError.
func (l *Lock) confirmAbandoned(ctx context.Context, cur *resourcelock.LeaderElectionRecord, raw []byte) (*resourcelock.LeaderElectionRecord, error) {
	wait := time.Duration(cur.LeaseDurationSeconds) * time.Second
	if l.Notify != nil {
		l.Notify(fmt.Sprintf("lock %s: the lease of %q was last renewed %s ago by its clock; taking it over once it stays unchanged for %s",
			l.describe(), cur.HolderIdentity, time.Since(cur.RenewTime.Time).Round(time.Second), wait))
	}
	since := l.clock.Now()
	for l.clock.Since(since) < wait {
		if err := sleepOn(ctx, l.clock, min(observeEvery, wait-l.clock.Since(since))); err != nil {
			return nil, fmt.Errorf("lock %s: waiting to take over the lease of %q: %w", l.describe(), cur.HolderIdentity, err)
		}
		next, nextRaw, err := l.ll.Get(ctx)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("lock %s was deleted while waiting to take it over: apply again", l.describe())
		}
		if err != nil {
			return nil, fmt.Errorf("read lock %s: %w", l.describe(), err)
		}
		if !bytes.Equal(raw, nextRaw) {
			return nil, l.heldError(next, true)
		}
	}
	return cur, nil
}

// AcquireWithin is Acquire, retried while the lock is held until timeout has
// passed (Terraform's -lock-timeout): a pipeline that restarts a killed run need
// not fail on the dead run's lease. 0 tries once.
func (l *Lock) AcquireWithin(ctx context.Context, timeout time.Duration) error {
	l.defaults()
	deadline := l.clock.Now().Add(timeout)
	for {
		err := l.Acquire(ctx)
		var held *HeldError
		if !errors.As(err, &held) || !l.clock.Now().Before(deadline) {
			return err
		}
		if l.Notify != nil {
			l.Notify(fmt.Sprintf("%v; waiting up to %s for it", err, deadline.Sub(l.clock.Now()).Round(time.Second)))
		}
		if err := sleepOn(ctx, l.clock, min(l.RenewEvery, deadline.Sub(l.clock.Now()))); err != nil {
			return fmt.Errorf("waiting for lock %s: %w", l.describe(), err)
		}
	}
}

func (l *Lock) heldBy(ctx context.Context) error {
	cur, _, err := l.ll.Get(ctx)
	if err != nil {
		return fmt.Errorf("lock %s is contended: %w", l.describe(), err)
	}
	return l.heldError(cur, false)
}

// expiry is when a lease record lapses unless renewed, by the holder's clock.
func expiry(rec *resourcelock.LeaderElectionRecord) time.Time {
	return rec.RenewTime.Add(time.Duration(rec.LeaseDurationSeconds) * time.Second)
}

// heldError describes a lease another run holds; renewed says it looked
// expired but changed while watched.
func (l *Lock) heldError(rec *resourcelock.LeaderElectionRecord, renewed bool) *HeldError {
	return &HeldError{Lease: l.describe(), Holder: rec.HolderIdentity, RenewedAt: rec.RenewTime.Time,
		ExpiresIn: time.Until(expiry(rec)), Renewed: renewed}
}

// sleepOn waits d on c, or until ctx ends (its error then): every wait of the
// lock and the runner sees a cancelled run at once, never after a bare sleep.
func sleepOn(ctx context.Context, c clock.Clock, d time.Duration) error {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Hold renews the lease until Release and returns a context that is cancelled the
// moment the lock is lost, so mutation stops. Besides renewing, it watches the
// Lease: one deleted (`runbook unlock --force`) or naming another holder ends the
// hold at once, not at the next renewal.
func (l *Lock) Hold(ctx context.Context) context.Context {
	held, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	lost := func(err error) {
		l.lose(err)
		cancel(l.Fence())
	}
	l.done.Add(2)
	go func() {
		defer l.done.Done()
		l.watchLease(rctx, lost)
	}()
	go func() {
		defer l.done.Done()
		t := time.NewTicker(l.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			if err := l.renew(rctx); err != nil {
				// A failed renewal is retried at the next tick until the renew
				// deadline has passed; then (or when the lease was taken over)
				// the lock is lost for good.
				if ferr := l.Fence(); errors.Is(err, ErrFenced) || ferr != nil {
					lost(err)
					return
				}
			}
		}
	}()
	return held
}

// watchLease calls lost when the Lease is deleted or names another holder, and
// returns then or when ctx ends. A watch that closes is opened again from the
// last resourceVersion seen.
func (l *Lock) watchLease(ctx context.Context, lost func(error)) {
	leases := l.Client.CoordinationV1().Leases(l.Namespace)
	sel := fields.OneTermEqualSelector("metadata.name", l.Name).String()
	rv := ""
	for ctx.Err() == nil {
		w, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			rv = "" // e.g. 410 Gone: start again from the current state
			if sleepOn(ctx, l.clock, observeEvery) != nil {
				return
			}
			continue
		}
		for ev := range w.ResultChan() {
			lease, _ := ev.Object.(*coordinationv1.Lease)
			switch {
			case ev.Type == watch.Error:
				rv = ""
			case lease == nil || lease.Name != l.Name:
			case ev.Type == watch.Deleted:
				w.Stop()
				lost(fmt.Errorf("%w: lock %s was deleted (runbook unlock --force?)", ErrFenced, l.describe()))
				return
			default:
				rv = lease.ResourceVersion
				if h := lease.Spec.HolderIdentity; ev.Type != watch.Bookmark && (h == nil || *h != l.Holder) {
					w.Stop()
					lost(fmt.Errorf("%w: lock %s now names %q as its holder", ErrFenced, l.describe(), deref(h)))
					return
				}
			}
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (l *Lock) renew(ctx context.Context) error {
	// Past the renew deadline the lease may be someone else's even if it still
	// names us (nobody took it over yet): a renewal then would make a holder that
	// was paused past its lease, and was refused writes meanwhile, carry on as if
	// nothing happened. client-go's leader election gives up the same way.
	if err := l.Fence(); err != nil {
		return err
	}
	// The renewal counts from before its request: the renew time written into the
	// lease is never later than the one the fence counts from.
	now := time.Now()
	local := l.clock.Now()
	ctx, cancel := context.WithTimeout(ctx, l.RenewEvery)
	defer cancel()
	cur, _, err := l.ll.Get(ctx)
	if apierrors.IsNotFound(err) {
		// Deleted under a live holder (runbook unlock): another run may take it
		// now, so this one must stop writing, not retry.
		return fmt.Errorf("%w: lock %s was deleted", ErrFenced, l.describe())
	}
	if err != nil {
		return fmt.Errorf("renew lock %s: %w", l.describe(), err)
	}
	if cur.HolderIdentity != l.Holder {
		return fmt.Errorf("%w: lock %s was taken over by %q", ErrFenced, l.describe(), cur.HolderIdentity)
	}
	cur.RenewTime = metav1.NewTime(now)
	if err := l.ll.Update(ctx, *cur); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("%w: lock %s changed under us", ErrFenced, l.describe())
		}
		return fmt.Errorf("renew lock %s: %w", l.describe(), err)
	}
	l.mu.Lock()
	if l.lostErr == nil {
		l.lastRenew = local
	}
	l.mu.Unlock()
	return nil
}

// lose records that the lock is lost; Fence fails from then on.
func (l *Lock) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		l.lostErr = err
	}
}

// Fence returns an error unless the lock is certainly still ours: never lost, and
// renewed less than the renew deadline ago by the local monotonic clock (a process
// resumed from SIGSTOP fails here before its renewal loop even wakes up). Once it
// failed it keeps failing: a lock that may have been someone else's for a moment
// is never trusted again by this process.
func (l *Lock) Fence() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr != nil {
		if errors.Is(l.lostErr, ErrFenced) {
			return l.lostErr
		}
		return fmt.Errorf("%w: %v", ErrFenced, l.lostErr)
	}
	if l.lastRenew.IsZero() {
		return fmt.Errorf("%w: lock %s was never acquired", ErrFenced, l.describe())
	}
	if age := l.clock.Since(l.lastRenew); age >= l.renewDeadline() {
		l.lostErr = fmt.Errorf("last renewal of %s was %s ago (lease %s, renew deadline %s)", l.describe(),
			age.Round(time.Millisecond), l.LeaseDuration, l.renewDeadline())
		return fmt.Errorf("%w: %v", ErrFenced, l.lostErr)
	}
	return nil
}

// Release stops renewing and gives the lease up, if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	if l.stop != nil {
		l.stop()
		l.done.Wait() // the watch must not see our own release as a loss
	}
	if l.Fence() != nil {
		return nil // someone else holds it now: leave it alone
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cur, _, err := l.ll.Get(ctx)
	if err != nil || cur.HolderIdentity != l.Holder {
		return err
	}
	cur.HolderIdentity = ""
	cur.RenewTime = metav1.NewTime(time.Now().Add(-time.Duration(cur.LeaseDurationSeconds) * time.Second))
	if err := l.ll.Update(ctx, *cur); err != nil {
		return fmt.Errorf("release lock %s: %w", l.describe(), err)
	}
	l.mu.Lock()
	l.lostErr = errors.New("released")
	l.mu.Unlock()
	return nil
}

// ErrLockLive is returned by Unlock for a lease that has not expired.
var ErrLockLive = errors.New("the lock's lease has not expired")

// Unlock breaks a lock (runbook unlock) and returns who held it. A lease that has
// not expired may belong to a run that is still going: it is refused with
// ErrLockLive unless force. A live holder whose lease is deleted stops writing at
// once (Hold watches its Lease), but whatever it was doing is left half-done.
func Unlock(ctx context.Context, client kubernetes.Interface, namespace, name string, force bool) (string, error) {
	lease, err := client.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lock %s/%s: %w", namespace, name, err)
	}
	holder := deref(lease.Spec.HolderIdentity)
	if holder != "" && !force && lease.Spec.RenewTime != nil && lease.Spec.LeaseDurationSeconds != nil {
		expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
		if left := time.Until(expires); left > 0 {
			return holder, fmt.Errorf("%w: lock %s/%s is held by %q, renewed %s ago, expires in %s: that run may still be going "+
				"(it is taken over on its own once expired); --force breaks it anyway", ErrLockLive, namespace, name, holder,
				time.Since(lease.Spec.RenewTime.Time).Round(time.Second), left.Round(time.Second))
		}
	}
	err = client.CoordinationV1().Leases(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &lease.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		return holder, fmt.Errorf("delete lock %s/%s: %w", namespace, name, err)
	}
	return holder, nil
}
