package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the decoder of keys API answers (Response and its Node
// tree). It reads the body as the parse needs bytes, so that decoding
// overlaps the transfer, and it validates and decodes in the same pass.
//
// It only accepts a "canonical subset" of JSON, the one etcd writes: one
// object whose fields are those of Response and Node, each at most once,
// spelled exactly, of its exact JSON type (or null); strings in valid
// UTF-8; integers in range without fraction, exponent or leading zero;
// expiration a string without escapes. On that subset its answer is, by
// construction, the one encoding/json gives, and FuzzDecodeResponse checks
// it. Anything else (including everything encoding/json would reject) is
// handed to encoding/json, which decodes the bytes read so far followed by
// the rest of the body: the answer, or the error, is then encoding/json's
// own, so no lenience or strictness of this decoder can ever show.

// Field bits of Response: each object records the fields it has seen, to
// send a duplicate (whose meaning depends on the decoder's merge rules) to
// encoding/json.
const (
	fieldAction = 1 << iota
	fieldNode
	fieldPrevNode
)

// Field bits of Node, as for Response.
const (
	fieldKey = 1 << iota
	fieldDir
	fieldValue
	fieldNodes
	fieldCreatedIndex
	fieldModifiedIndex
	fieldExpiration
	fieldTTL
)

// maxDecodeDepth is the deepest node nesting decoded; deeper bodies go to
// encoding/json (whose own limit is 10,000 nested values), so the
// recursion here stays shallow whatever the input.
const maxDecodeDepth = 400

// minRead is the least free space offered to a Read: big enough that a
// large body takes few calls, small enough not to matter for a small one.
const minRead = 32 << 10

// firstWindow is the window of a new decoder: a whole small answer.
const firstWindow = 4 << 10

// maxWindow is the size the window grows to for a large body: the
// maxFallbackBytes it keeps for a fallback, and room for large reads.
const maxWindow = maxFallbackBytes + 4*minRead

// maxPooledBuffer bounds the buffers kept in the pool, so that one huge
// answer does not pin its memory for the life of the process.
const maxPooledBuffer = 4 << 20

// maxNodeSlab bounds how many Nodes are allocated together (see newNode).
const maxNodeSlab = 128

// special marks the bytes at which the string scan must stop and look:
// the closing quote, an escape, a control character (invalid in JSON) and
// the first byte of a multi-byte UTF-8 sequence (to be validated).
var special = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// streamDecoder decodes one Response from a reader. It is pooled: the
// buffers it grows are reused by the next answer.
type streamDecoder struct {
	r io.Reader
	// intern is set while the action is decoded: known names are then
	// stored as constants rather than allocated.
	intern bool
	// buf is a window on the body: the parse reads it at i. It holds
	// every byte read from r until the parse is past maxFallbackBytes (a
	// fallback replays them to encoding/json); then the bytes before the
	// token being parsed are dropped as more are read (see fill).
	// Positions are kept as indexes, since a read may move buf.
	buf []byte
	i   int
	// hold, when not negative, is a position before i that fill keeps
	// too (see key).
	hold int
	// base is how many bytes of the body were dropped before buf[0].
	base int
	// keepAll (tests only) keeps every byte, as the decoder did before
	// it had a window, to compare the two.
	keepAll bool
	// rerr is the error (io.EOF included) of the last read, once one
	// failed: no more reads are made after it.
	rerr  error
	depth int
	// stack holds the children of the node arrays being decoded, so that
	// each Nodes slice is allocated once, at its exact length, when its
	// array ends.
	stack []*Node
	// scratch is where a string with escapes is decoded before it is
	// made a string.
	scratch []byte
	// slab holds Nodes allocated ahead (see newNode); nodes counts those
	// handed out in this decode. times and ntimes do the same for
	// expirations.
	slab   []Node
	nodes  int
	times  []time.Time
	ntimes int
	// strs is the slab strings are allocated from (see newString): its
	// first Len bytes are in strings already.
	strs strings.Builder
	// bad is set when the body is refused outright, without the fallback
	// to encoding/json: it is not something etcd sends.
	bad error
}

// errNodeWithoutKey refuses a node without a key: etcd sends none but the
// root directory (the top-level node of a read of "/"). Requiring a key
// also bounds what an answer may allocate: every Node (about 100 bytes)
// then costs at least the 11 bytes of {"key":"x"} in the body.
var errNodeWithoutKey = errors.New("a node without a key")

// checkKeys applies the stream decoder's rule on keys (errNodeWithoutKey)
// to an answer decoded by encoding/json.
func checkKeys(resp *Response) error {
	var walk func(n *Node, top bool) error
	walk = func(n *Node, top bool) error {
		if n == nil {
			return nil
		}
		if n.Key == "" && !(top && n.Dir) {
			return fmt.Errorf("%w: %w", ErrInvalidJSON, errNodeWithoutKey)
		}
		for _, c := range n.Nodes {
			if err := walk(c, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(resp.Node, true); err != nil {
		return err
	}
	return walk(resp.PrevNode, true)
}

// decodeResponseStream decodes one JSON value from r into resp exactly as
// a json.Decoder would (same value, or an error wrapping the same one),
// reading r only as far as the value needs. It is decodeJSON for a
// *Response; see there for the errors.
func decodeResponseStream(r io.Reader, resp *Response) error {
	if resp.Node != nil || resp.PrevNode != nil {
		// encoding/json would decode into the existing nodes, merging:
		// leave that to it rather than copy its rules.
		return decodeStd(r, resp)
	}
	d := getDecoder()
	defer d.release()
	return d.decode(r, resp)
}

// responseWithNode is a Response and room for its first Node, allocated
// together (see decodeNewResponse).
type responseWithNode struct {
	resp Response
	node [1]Node
}

// decodeNewResponse is decodeResponseStream into a new Response, allocated
// with its first Node: an answer of one key then costs one allocation
// less. A Node kept alone keeps the Response alive, as it keeps the
// Nodes allocated with it (see newNode).
func decodeNewResponse(r io.Reader) (*Response, error) {
	p := new(responseWithNode)
	d := getDecoder()
	defer d.release()
	d.slab = p.node[:]
	return &p.resp, d.decode(r, &p.resp)
}

// decode is decodeResponseStream with d, for a resp without nodes.
func (d *streamDecoder) decode(r io.Reader, resp *Response) error {
	d.r = r
	d.hold = -1
	orig := *resp
	if d.response(resp) {
		return nil
	}
	*resp = orig
	if d.bad != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJSON, d.bad)
	}
	if d.base > 0 {
		// The start of the body is gone, but what encoding/json would
		// say is known: the dropped bytes, more than maxFallbackBytes
		// of them, were a valid start of a JSON value that does not
		// end there, so it would read maxFallbackBytes of them and fail
		// on the limit (see fill).
		return errFallbackTooLarge
	}
	if err := decodeStd(&fallbackReader{r: d.replay()}, resp); err != nil {
		return err
	}
	if err := checkKeys(resp); err != nil {
		*resp = orig
		return err
	}
	return nil
}

// next skips white space and returns the byte after it, without
// consuming it; false at the end of the body.
func (d *streamDecoder) next() (byte, bool) {
	for {
		for d.i < len(d.buf) {
			c := d.buf[d.i]
			if c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
				return c, true
			}
			d.i++
		}
		if _, ok := d.fill(); !ok {
			return 0, false
		}
	}
}

// expect skips white space and consumes c.
func (d *streamDecoder) expect(c byte) bool {
	b, ok := d.next()
	if !ok || b != c {
		return false
	}
	d.i++
	return true
}

// literal consumes lit if it comes next.
func (d *streamDecoder) literal(lit string) bool {
	if !d.ensure(len(lit)) || string(d.buf[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// null consumes a null if one comes next (the caller has skipped white
// space). A null leaves every field of Response and Node as it was with
// encoding/json (for pointers and slices: nil, which they are, since a
// field seen before is refused as a duplicate).
func (d *streamDecoder) null() bool {
	return d.i < len(d.buf) && d.buf[d.i] == 'n' && d.literal("null")
}

// key consumes an object key, its opening quote included, and the colon
// after it, and returns the key's bytes (valid until the next read). Only
// plain ASCII keys are accepted: an escape could spell a field's name
// differently, which is encoding/json's business.
func (d *streamDecoder) key() ([]byte, bool) {
	if !d.expect('"') {
		return nil, false
	}
	// d.i stays at the key's start while it is scanned, so that fill
	// keeps it.
	start := d.i
	i := d.i
	for {
		for i < len(d.buf) {
			c := d.buf[i]
			if !special[c] {
				i++
				continue
			}
			if c == '"' {
				n := i - start
				d.i = i + 1
				// The reads below keep the key (see fill).
				d.hold = start
				ok := true
				// etcd writes no white space: look for that first.
				if d.i < len(d.buf) && d.buf[d.i] == ':' {
					d.i++
				} else {
					ok = d.expect(':')
				}
				if ok && (d.i >= len(d.buf) || d.buf[d.i] <= ' ') {
					_, ok = d.next()
				}
				start, d.hold = d.hold, -1
				if !ok {
					return nil, false
				}
				return d.buf[start : start+n], true
			}
			return nil, false
		}
		shift, ok := d.fill()
		start -= shift
		i -= shift
		if !ok {
			return nil, false
		}
	}
}

// endMember consumes what follows an object member: a comma (more members
// follow: it reports more) or the closing brace.
func (d *streamDecoder) endMember() (more, ok bool) {
	var c byte
	if d.i < len(d.buf) && d.buf[d.i] > ' ' {
		c = d.buf[d.i]
	} else if c, ok = d.next(); !ok {
		return false, false
	}
	d.i++
	switch c {
	case ',':
		return true, true
	case '}':
		return false, true
	}
	return false, false
}

// response decodes the top-level object into resp, reporting false if
// the body is outside the subset (resp may then hold part of it).
func (d *streamDecoder) response(resp *Response) bool {
	if !d.expect('{') {
		return false
	}
	if c, ok := d.next(); !ok {
		return false
	} else if c == '}' {
		d.i++
		return true
	}
	var seen uint
	for {
		k, ok := d.key()
		if !ok {
			return false
		}
		var bit uint
		switch string(k) {
		case "action":
			bit = fieldAction
		case "node":
			bit = fieldNode
		case "prevNode":
			bit = fieldPrevNode
		}
		if seen&bit != 0 {
			return false // a duplicate: see node
		}
		switch string(k) {
		case "action":
			bit = fieldAction
			if !d.null() {
				d.intern = true // the few action names need no allocation
				ok := d.str(&resp.Action)
				d.intern = false
				if !ok {
					return false
				}
			}
		case "node":
			bit = fieldNode
			if !d.null() {
				if resp.Node, ok = d.node(); !ok {
					return false
				}
			}
		case "prevNode":
			bit = fieldPrevNode
			if !d.null() {
				if resp.PrevNode, ok = d.node(); !ok {
					return false
				}
			}
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok := d.endMember()
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// newNode returns a zero Node. Nodes are allocated in slabs, a few at a
// time at first and up to maxNodeSlab as the answer proves big: a listing
// then costs a few allocations per hundred nodes instead of one each, and
// an answer of one or two nodes allocates just those. The price is that a
// node kept alone keeps its slab alive (at most maxNodeSlab Nodes, of the
// same answer).
func (d *streamDecoder) newNode() *Node {
	if len(d.slab) == 0 {
		n := min(max(d.nodes, 1), maxNodeSlab)
		d.slab = make([]Node, n)
	}
	n := &d.slab[0]
	d.slab = d.slab[1:]
	d.nodes++
	return n
}

// newTime returns a zero time.Time, allocated in slabs as newNode does.
func (d *streamDecoder) newTime() *time.Time {
	if len(d.times) == 0 {
		n := min(max(d.ntimes, 1), maxNodeSlab)
		d.times = make([]time.Time, n)
	}
	t := &d.times[0]
	d.times = d.times[1:]
	d.ntimes++
	return t
}

// The names of Node's fields as etcd writes them, with their quotes and
// the colon after them, as little-endian words (the first eight bytes, then
// the rest), and masks keeping the first 5, 6 or 7 bytes of a word.
// TestFieldWords checks them.
const (
	wordKey            = 0x3a2279656b22     // "key":
	wordValue          = 0x3a2265756c617622 // "value":
	wordModifiedIndex0 = 0x65696669646f6d22 // "modifie
	wordModifiedIndex1 = 0x3a227865646e4964 // dIndex":
	wordCreatedIndex0  = 0x6465746165726322 // "created
	wordCreatedIndex1  = 0x3a227865646e49   // Index":
	wordDir            = 0x3a2272696422     // "dir":
	wordNodes          = 0x3a227365646f6e22 // "nodes":
	wordTTL            = 0x3a226c747422     // "ttl":
	wordExpiration0    = 0x7461726970786522 // "expirat
	wordExpiration1    = 0x3a226e6f69       // ion":
	mask5              = 1<<40 - 1
	mask6              = 1<<48 - 1
	mask7              = 1<<56 - 1
)

// nodeField consumes a member's key in a Node object and the colon after
// it, and returns the field's bit: 0 if the key is not exactly the name of
// a field, or the object ends there.
func (d *streamDecoder) nodeField() uint {
	// The common case: the key as etcd writes it, all in buf, and the
	// value's first byte after it. The key is compared whole, with its
	// quotes and colon, as one or two little-endian words, in the order
	// of how often etcd writes them.
	if buf, i := d.buf, d.i; i+len(`"modifiedIndex":`)+1 <= len(buf) {
		w := binary.LittleEndian.Uint64(buf[i:])
		var n int
		var bit uint
		switch {
		case w&mask6 == wordKey:
			n, bit = 6, fieldKey
		case w == wordValue:
			n, bit = 8, fieldValue
		case w == wordModifiedIndex0 && binary.LittleEndian.Uint64(buf[i+8:]) == wordModifiedIndex1:
			n, bit = 16, fieldModifiedIndex
		case w == wordCreatedIndex0 && binary.LittleEndian.Uint64(buf[i+8:])&mask7 == wordCreatedIndex1:
			n, bit = 15, fieldCreatedIndex
		case w&mask6 == wordDir:
			n, bit = 6, fieldDir
		case w == wordNodes:
			n, bit = 8, fieldNodes
		case w&mask6 == wordTTL:
			n, bit = 6, fieldTTL
		case w == wordExpiration0 && binary.LittleEndian.Uint64(buf[i+8:])&mask5 == wordExpiration1:
			n, bit = 13, fieldExpiration
		}
		if bit != 0 && buf[i+n] > ' ' {
			d.i = i + n
			return bit
		}
	}
	k, ok := d.key()
	if !ok {
		return 0
	}
	switch string(k) {
	case "key":
		return fieldKey
	case "dir":
		return fieldDir
	case "value":
		return fieldValue
	case "nodes":
		return fieldNodes
	case "createdIndex":
		return fieldCreatedIndex
	case "modifiedIndex":
		return fieldModifiedIndex
	case "expiration":
		return fieldExpiration
	case "ttl":
		return fieldTTL
	}
	return 0
}

// node decodes a Node object (at its opening brace, after white space).
func (d *streamDecoder) node() (*Node, bool) {
	if d.i >= len(d.buf) || d.buf[d.i] != '{' {
		return nil, false
	}
	d.i++
	if d.depth++; d.depth > maxDecodeDepth {
		return nil, false
	}
	n := d.newNode()
	top := d.depth == 1
	// next, with the common case (no white space) inlined.
	var c byte
	var ok bool
	if i := d.i; i < len(d.buf) && d.buf[i] > ' ' {
		c, ok = d.buf[i], true
	} else {
		c, ok = d.next()
	}
	if !ok {
		return nil, false
	} else if c == '}' {
		d.bad = errNodeWithoutKey
		return nil, false
	}
	seen, done := d.leaf(n)
	if done {
		d.depth--
		return n, true
	}
	for {
		bit := d.nodeField()
		if seen&bit != 0 {
			// A duplicate: encoding/json merges, before the value is
			// decoded here (which could refuse what the merge fixes).
			return nil, false
		}
		var ok bool
		switch bit {
		case fieldKey:
			if !d.null() {
				if !d.str(&n.Key) {
					return nil, false
				}
			}
		case fieldDir:
			switch {
			case d.null():
			case d.literal("true"):
				n.Dir = true
			case d.literal("false"):
			default:
				return nil, false
			}
		case fieldValue:
			if !d.null() {
				if !d.str(&n.Value) {
					return nil, false
				}
			}
		case fieldNodes:
			if !d.null() {
				if n.Nodes, ok = d.children(); !ok {
					return nil, false
				}
			}
		case fieldCreatedIndex:
			if !d.null() {
				if n.CreatedIndex, ok = d.uint(); !ok {
					return nil, false
				}
			}
		case fieldModifiedIndex:
			if !d.null() {
				if n.ModifiedIndex, ok = d.uint(); !ok {
					return nil, false
				}
			}
		case fieldExpiration:
			if !d.null() {
				if n.Expiration, ok = d.time(); !ok {
					return nil, false
				}
			}
		case fieldTTL:
			if !d.null() {
				if n.TTL, ok = d.int(); !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		// endMember, with its common case inlined.
		more := false
		if i := d.i; i < len(d.buf) && d.buf[i] == ',' {
			d.i = i + 1
			more = true
		} else if more, ok = d.endMember(); !ok {
			return nil, false
		}
		if !more {
			if n.Key == "" && !(top && n.Dir) {
				d.bad = errNodeWithoutKey
				return nil, false
			}
			d.depth--
			return n, true
		}
	}
}

// leaf decodes the members of a key's Node (after its opening brace) and
// its closing brace when they are exactly as etcd writes them and all in
// buf: "key", "value", "modifiedIndex" and "createdIndex", in that order,
// without white space, a key and a value of ASCII without control
// characters or escapes, the key not empty, and integers of fewer than
// eight digits. It
// gives what node would, with fewer steps. Otherwise it decodes the key if
// that much is in this form (a value with escapes is common), reports it
// in seen, and leaves the rest to node; or it changes nothing.
func (d *streamDecoder) leaf(n *Node) (seen uint, done bool) {
	buf, i := d.buf, d.i
	if i+8 > len(buf) || binary.LittleEndian.Uint64(buf[i:])&mask7 != wordKey|'"'<<48 {
		return 0, false
	}
	ks := i + len(`"key":"`)
	ke, ok := plainEnd(buf, ks)
	if !ok || ke == ks || ke+1 >= len(buf) || buf[ke+1] != ',' {
		return 0, false
	}
	n.Key = d.newString(buf[ks:ke])
	d.i = ke + 2 // the next member's name
	i = ke + 1
	if i+len(`,"value":"`) > len(buf) || binary.LittleEndian.Uint64(buf[i+1:]) != wordValue || buf[i+9] != '"' {
		return fieldKey, false
	}
	vs := i + len(`,"value":"`)
	ve, ok := plainEnd(buf, vs)
	if !ok {
		return fieldKey, false
	}
	i = ve + 1
	if i+len(`,"modifiedIndex":`)+8 > len(buf) || buf[i] != ',' || binary.LittleEndian.Uint64(buf[i+1:]) != wordModifiedIndex0 || binary.LittleEndian.Uint64(buf[i+9:]) != wordModifiedIndex1 {
		return fieldKey, false
	}
	i += len(`,"modifiedIndex":`)
	mod, k := shortInt(binary.LittleEndian.Uint64(buf[i:]))
	if k <= 0 {
		return fieldKey, false
	}
	i += k
	if i+len(`,"createdIndex":`)+8 > len(buf) || buf[i] != ',' || binary.LittleEndian.Uint64(buf[i+1:]) != wordCreatedIndex0 || binary.LittleEndian.Uint64(buf[i+9:])&mask7 != wordCreatedIndex1 {
		return fieldKey, false
	}
	i += len(`,"createdIndex":`)
	created, k := shortInt(binary.LittleEndian.Uint64(buf[i:]))
	if k <= 0 || buf[i+k] != '}' {
		return fieldKey, false
	}
	n.Value = d.newString(buf[vs:ve])
	n.ModifiedIndex = mod
	n.CreatedIndex = created
	d.i = i + k + 1
	return 0, true
}

// children decodes an array of Node objects (at its opening bracket). An
// empty array gives an empty, non-nil slice, as with encoding/json; a null
// element (which encoding/json keeps as a nil *Node) is refused.
func (d *streamDecoder) children() (Nodes, bool) {
	if d.i >= len(d.buf) || d.buf[d.i] != '[' {
		return nil, false
	}
	d.i++
	c, ok := d.next()
	if !ok {
		return nil, false
	}
	if c == ']' {
		d.i++
		return Nodes{}, true
	}
	base := len(d.stack)
	for {
		child, ok := d.node()
		if !ok {
			return nil, false
		}
		d.stack = append(d.stack, child)
		// etcd writes no white space: look for ",{" first.
		if i := d.i; i+1 < len(d.buf) && d.buf[i] == ',' && d.buf[i+1] > ' ' {
			d.i = i + 1
			continue
		}
		c, ok := d.next()
		if !ok {
			return nil, false
		}
		d.i++
		if c == ']' {
			break
		}
		if c != ',' {
			return nil, false
		}
		if _, ok := d.next(); !ok {
			return nil, false
		}
	}
	ns := make(Nodes, len(d.stack)-base)
	copy(ns, d.stack[base:])
	clear(d.stack[base:])
	d.stack = d.stack[:base]
	return ns, true
}
