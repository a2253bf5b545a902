package health

import (
	"testing"
	"time"
)

func TestAdaptiveTimeout(t *testing.T) {
	var h AdaptiveTimeout
	if h.Current() != MaxTimeout {
		t.Fatal("no data: want the fixed default")
	}
	for i := 0; i < 512; i++ {
		h.Add(time.Millisecond)
	}
	if got := h.Current(); got != MinTimeout {
		t.Errorf("fast cluster: %v, want the floor %v", got, MinTimeout)
	}
	for i := 0; i < 2048; i++ {
		h.Add(400 * time.Millisecond)
	}
	if got := h.Current(); got < 1200*time.Millisecond || got > 1300*time.Millisecond {
		t.Errorf("400 ms answers: %v, want about 3 × 400 ms", got)
	}
	for i := 0; i < 2048; i++ {
		h.Add(5 * time.Second)
	}
	if got := h.Current(); got != MaxTimeout {
		t.Errorf("slow cluster: %v, want the cap", got)
	}
}

func TestBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, 1, time.Microsecond, 3 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond, time.Second, time.Minute} {
		i := bucket(d)
		if up := upper(i); up < d {
			t.Errorf("%v in bucket %d with upper bound %v", d, i, up)
		}
		if i > 0 && upper(i-1) >= d && d > 2<<10 {
			t.Errorf("%v in bucket %d but fits %d", d, i, i-1)
		}
	}
}

func TestPeakEWMA(t *testing.T) {
	var p PeakEWMA
	if p.Value(0) != 0 {
		t.Fatal("no sample: want 0")
	}
	p.Observe(0, float64(100*time.Millisecond))
	if got := p.Value(0); got != 100*time.Millisecond {
		t.Fatalf("one sample: %v", got)
	}
	p.Observe(0, float64(200*time.Millisecond))
	if got := p.Value(0); got != 200*time.Millisecond {
		t.Fatalf("a higher sample is taken at once: %v", got)
	}
	p.Observe(int64(EWMADecay), float64(10*time.Millisecond))
	if got := p.Value(int64(EWMADecay)); got < 70*time.Millisecond || got > 90*time.Millisecond {
		t.Errorf("a lower sample one time constant later: %v, want about 200/e + 10(1-1/e) ms", got)
	}
	if got := p.Value(int64(11 * EWMADecay)); got >= 10*time.Microsecond*4 {
		t.Errorf("ten time constants without samples: %v, want near zero", got)
	}
}
