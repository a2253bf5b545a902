//go:build goexperiment.jsonv2

package bench

import (
	jsonv1 "encoding/json"
	jsonv2 "encoding/json/v2"
	"testing"

	client "github.com/etcdv2/client"
)

// With GOEXPERIMENT=jsonv2, encoding/json/v2 joins the comparison twice:
// with its default options ("json-v2") and with the options that give
// encoding/json's semantics ("json-v2-v1opts"), the configuration a
// replacement would need. (In that build encoding/json itself runs on the
// v2 implementation, so the equivalence check of json-v2-v1opts is against
// that, not against the v1 implementation of a default build.)
func init() {
	jsonLibs = append(jsonLibs,
		jsonLib{"json-v2", func(d []byte, r *client.Response) error { return jsonv2.Unmarshal(d, r) }},
		jsonLib{"json-v2-v1opts", func(d []byte, r *client.Response) error {
			return jsonv2.Unmarshal(d, r, jsonv1.DefaultOptionsV1())
		}},
	)
}

// TestJSONv2DefaultsDiffer pins why json-v2 with its default options
// cannot stand in for encoding/json: it matches member names exactly, so
// an answer encoding/json reads ("ACTION", "Node", "KEY") decodes to
// nothing.
func TestJSONv2DefaultsDiffer(t *testing.T) {
	in := []byte(`{"ACTION":"get","Node":{"KEY":"/a","Value":"v"}}`)
	var v1, v2 client.Response
	if err := jsonv1.Unmarshal(in, &v1); err != nil || v1.Node == nil || v1.Node.Key != "/a" {
		t.Fatalf("encoding/json: %+v, %v", v1, err)
	}
	if err := jsonv2.Unmarshal(in, &v2); err != nil || v2.Node != nil || v2.Action != "" {
		t.Fatalf("json/v2 with defaults now matches names case-insensitively: %+v, %v", v2, err)
	}
}

// FuzzJSONv2Equivalence: encoding/json/v2 with encoding/json's options
// against encoding/json.
func FuzzJSONv2Equivalence(f *testing.F) { fuzzEquivalence(f, jsonLibs[4]) }
