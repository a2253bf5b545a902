//go:build goexperiment.jsonv2

package bench

import (
	jsonv2 "encoding/json/v2"
	"testing"

	client "github.com/etcdv2/client"
)

// With GOEXPERIMENT=jsonv2, encoding/json/v2 with its default options
// joins the comparison. (In that build encoding/json itself runs on the v2
// implementation, so the equivalence check compares v2's default
// semantics with v1's.)
func init() {
	jsonLibs = append(jsonLibs, jsonLib{"json-v2", func(d []byte, r *client.Response) error { return jsonv2.Unmarshal(d, r) }})
}

// FuzzJSONv2Equivalence: encoding/json/v2 (default options) against
// encoding/json.
func FuzzJSONv2Equivalence(f *testing.F) { fuzzEquivalence(f, jsonLibs[3]) }
