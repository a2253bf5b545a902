package client

// Random returns a policy that sends each attempt to a candidate chosen
// uniformly at random. (The original client's "random" mode was a random
// pin, which Sticky reproduces.)
func Random() Selector { return &random{intn: randIntN} }

type random struct{ intn func(int) int }

func (r *random) Select(_ RequestInfo, candidates []Endpoint) int {
	return r.intn(len(candidates))
}
