package main

import (
	"encoding/json"

	"github.com/etcdv2/client"
)

// printResponseKey prints a key's response in the output format, as
// etcdctl v2 did.
func (t *tool) printResponseKey(resp *client.Response, format string) {
	switch format {
	case "simple":
		if resp.Action != "delete" {
			t.println(resp.Node.Value)
		} else {
			t.println("PrevNode.Value:", resp.PrevNode.Value)
		}
	case "extended":
		t.println("Key:", resp.Node.Key)
		t.println("Created-Index:", resp.Node.CreatedIndex)
		t.println("Modified-Index:", resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			t.println("PrevNode.Value:", resp.PrevNode.Value)
		}
		t.println("TTL:", resp.Node.TTL)
		t.println("Index:", resp.Index)
		if resp.Action != "delete" {
			t.println("")
			t.println(resp.Node.Value)
		}
	case "json":
		b, err := json.Marshal(resp)
		if err != nil {
			panic(err)
		}
		t.println(string(b))
	default:
		t.errorln("Unsupported output format:", format)
	}
}
