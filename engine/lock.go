package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	clock     clock.PassiveClock // the real clock; tests step a fake one
	ll        *resourcelock.LeaseLock
	mu        sync.Mutex
	lastRenew time.Time // monotonic: local time of the last successful write
	lostErr   error
	stop      context.CancelFunc
	done      chan struct{}
}

// HeldError says who holds the lock.
type HeldError struct {
	Lease     string
	Holder    string
	RenewedAt time.Time
	ExpiresIn time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lock %s is held by %q (renewed %s ago, expires in %s unless renewed); if that run is gone for sure, `runbook unlock`",
		e.Lease, e.Holder, time.Since(e.RenewedAt).Round(time.Second), e.ExpiresIn.Round(time.Second))
}

// ErrFenced is returned by Fence once the lock may no longer be ours.
var ErrFenced = errors.New("lost the run lock: refusing to write")

// DefaultHolder identifies this process: user@host pid N.
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
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
func (l *Lock) Acquire(ctx context.Context) error {
	l.defaults()
	now, local := time.Now(), l.clock.Now()
	rec := resourcelock.LeaderElectionRecord{HolderIdentity: l.Holder, LeaseDurationSeconds: int(l.LeaseDuration.Seconds()),
		AcquireTime: metav1.NewTime(now), RenewTime: metav1.NewTime(now)}
	cur, _, err := l.ll.Get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		if err := l.ll.Create(ctx, rec); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return l.heldBy(ctx)
			}
			return fmt.Errorf("create lock %s: %w", l.describe(), err)
		}
	case err != nil:
		return fmt.Errorf("read lock %s: %w", l.describe(), err)
	default:
		expires := cur.RenewTime.Add(time.Duration(cur.LeaseDurationSeconds) * time.Second)
		if cur.HolderIdentity != "" && cur.HolderIdentity != l.Holder && now.Before(expires) {
			return &HeldError{Lease: l.describe(), Holder: cur.HolderIdentity, RenewedAt: cur.RenewTime.Time, ExpiresIn: time.Until(expires)}
		}
		rec.LeaderTransitions = cur.LeaderTransitions + 1
		// Update carries the resourceVersion read above: two runs taking over the same
		// expired lease cannot both win.
		if err := l.ll.Update(ctx, rec); err != nil {
			if apierrors.IsConflict(err) {
				return l.heldBy(ctx)
			}
			return fmt.Errorf("take over lock %s: %w", l.describe(), err)
		}
	}
	l.mu.Lock()
	l.lastRenew, l.lostErr = local, nil
	l.mu.Unlock()
	return nil
}

func (l *Lock) heldBy(ctx context.Context) error {
	cur, _, err := l.ll.Get(ctx)
	if err != nil {
		return fmt.Errorf("lock %s is contended: %w", l.describe(), err)
	}
	expires := cur.RenewTime.Add(time.Duration(cur.LeaseDurationSeconds) * time.Second)
	return &HeldError{Lease: l.describe(), Holder: cur.HolderIdentity, RenewedAt: cur.RenewTime.Time, ExpiresIn: time.Until(expires)}
}

// Hold renews the lease until Release and returns a context that is cancelled the
// moment the lock is lost, so mutation stops.
func (l *Lock) Hold(ctx context.Context) context.Context {
	held, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = stop, make(chan struct{})
	go func() {
		defer close(l.done)
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
					l.lose(err)
					cancel(l.Fence())
					return
				}
			}
		}
	}()
	return held
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
		<-l.done
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

// Unlock breaks a lock whatever its holder (runbook unlock) and returns who held it.
func Unlock(ctx context.Context, client kubernetes.Interface, namespace, name string) (string, error) {
	lease, err := client.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lock %s/%s: %w", namespace, name, err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	err = client.CoordinationV1().Leases(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &lease.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		return holder, fmt.Errorf("delete lock %s/%s: %w", namespace, name, err)
	}
	return holder, nil
}
