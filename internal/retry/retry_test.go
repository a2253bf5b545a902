package retry

import (
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	b := Backoff{Base: 50 * time.Millisecond, Max: time.Second}
	for round, want := range map[int]time.Duration{
		1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond,
		5: 800 * time.Millisecond, 6: time.Second, 100: time.Second,
	} {
		if got := b.Ceiling(round); got != want {
			t.Errorf("round %d: ceiling %v, want %v", round, got, want)
		}
	}
	if got := b.Pause(3, func(n int64) int64 { return n - 1 }); got != 200*time.Millisecond-1 {
		t.Errorf("pause with the largest draw: %v", got)
	}
}

func TestBudgetSpendsAndRefills(t *testing.T) {
	b := NewBudget(0.5, 1, false, 0)
	for i := 0; i < Max; i++ {
		if !b.Withdraw(0) {
			t.Fatalf("retry %d of a full budget denied", i)
		}
	}
	if b.Withdraw(0) {
		t.Fatal("retry of an empty budget allowed")
	}
	b.Deposit()
	b.Deposit()
	if !b.Withdraw(0) || b.Withdraw(0) {
		t.Fatal("two requests at ratio 0.5 should allow exactly one retry")
	}
	if !b.Withdraw(int64(time.Second)) || b.Withdraw(int64(time.Second)) {
		t.Fatal("one second at 1/s should allow exactly one retry")
	}
	if got := b.Denied(); got != 3 {
		t.Errorf("denied %d, want 3", got)
	}
	d := NewBudget(0.5, 1, true, 0)
	for i := 0; i < 2*Max; i++ {
		if !d.Withdraw(0) {
			t.Fatal("a disabled budget denied a retry")
		}
	}
}
