package client

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The scalars of the keys API answers: strings (with the escapes and
// UTF-8 checks of the canonical subset, see decoder.go), integers and
// times.

// str decodes a string (at its opening quote) into *dst, as encoding/json
// does, refusing invalid UTF-8 (which encoding/json would replace) and
// what JSON forbids. A string without escapes is copied once, from buf
// into the string.
func (d *streamDecoder) str(dst *string) bool {
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return false
	}
	start := d.i + 1
	i := start
	nonASCII := false
	for {
		buf := d.buf
		for i < len(buf) {
			// Skip plain bytes eight at a time: most of a body is the
			// content of strings.
			for i+8 <= len(buf) {
				if m := specialBytes(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
					i += bits.TrailingZeros64(m) >> 3
					break
				}
				i += 8
			}
			if i >= len(buf) {
				break
			}
			c := buf[i]
			if !special[c] {
				i++
				continue
			}
			switch {
			case c == '"':
				d.i = i + 1
				if nonASCII || d.intern {
					return d.plain(dst, buf[start:i], nonASCII)
				}
				*dst = d.newString(buf[start:i])
				return true
			case c == '\\':
				return d.escaped(dst, start, i, nonASCII)
			case c < 0x20:
				return false
			}
			nonASCII = true
			i++
		}
		// d.i stays at the opening quote: fill keeps the string.
		shift, ok := d.fill()
		start -= shift
		i -= shift
		if !ok {
			return false
		}
	}
}

// plain stores a string without escapes, raw being its content.
func (d *streamDecoder) plain(dst *string, raw []byte, nonASCII bool) bool {
	switch {
	case len(raw) == 0:
		*dst = "" // Response.Action may have been set by the caller
	case nonASCII && !utf8.Valid(raw):
		return false
	default:
		if d.intern {
			if a, ok := knownAction(raw); ok {
				*dst = a
				return true
			}
		}
		*dst = d.newString(raw)
	}
	return true
}

// maxStringSlab is the size of the slabs a large answer's strings are
// allocated from (see newString).
const maxStringSlab = 32 << 10

// newString returns a copy of b as a string. The strings of an answer are
// allocated together, in slabs sized to what is left of the body in the
// window (all of a small answer's strings then take one allocation) and
// at most maxStringSlab, so that a listing costs a few allocations for
// its strings instead of one each. The price is that a string kept alone
// keeps its slab alive: at most maxStringSlab bytes, of the same answer.
func (d *streamDecoder) newString(b []byte) string {
	if at := d.strs.Len(); len(b) <= d.strs.Cap()-at {
		d.strs.Write(b)
		return d.strs.String()[at:]
	}
	return d.newSlab(b)
}

// newSlab is newString when the slab has no room for b: b is allocated
// alone if it is large (or a single byte, which Go makes into a string
// without allocating), else from a new slab.
func (d *streamDecoder) newSlab(b []byte) string {
	n := len(b)
	if n <= 1 || n > maxStringSlab/4 {
		return string(b)
	}
	// The old slab belongs to the strings made from it.
	d.strs.Reset()
	d.strs.Grow(min(max(len(d.buf)-d.i, n), maxStringSlab))
	d.strs.Write(b)
	return d.strs.String()
}

// knownAction returns the constant for an action name the server sends.
func knownAction(raw []byte) (string, bool) {
	switch string(raw) {
	case "get":
		return "get", true
	case "set":
		return "set", true
	case "create":
		return "create", true
	case "update":
		return "update", true
	case "delete":
		return "delete", true
	case "compareAndSwap":
		return "compareAndSwap", true
	case "compareAndDelete":
		return "compareAndDelete", true
	case "expire":
		return "expire", true
	}
	return "", false
}

// escaped finishes str for a string whose content began at start and
// has a backslash at i: it decodes the rest into scratch while scanning
// it, decoding escapes as encoding/json does and refusing invalid ones.
// Escapes are ASCII, so the UTF-8 of the content is checked on the raw
// bytes once the end is found.
func (d *streamDecoder) escaped(dst *string, start, i int, nonASCII bool) bool {
	out := append(d.scratch[:0], d.buf[start:i]...)
	// scratch is given back on every return, as it may have grown.
	defer func() { d.scratch = out[:0] }()
	for {
		// The fast path, while buf holds the longest escape (a
		// surrogate pair, 12 bytes) at i: the strings etcd sends are
		// short runs of plain bytes between escapes (JSON documents
		// with escaped quotes), so each step copies the next eight
		// bytes whole and keeps those before the first special one.
		buf := d.buf
		for len(buf)-i >= 12 {
			out = slices.Grow(out, 8)
			x := binary.LittleEndian.Uint64(buf[i:])
			n := len(out)
			binary.LittleEndian.PutUint64(out[n:n+8], x)
			m := specialBytes(x)
			if m == 0 {
				out = out[:n+8]
				i += 8
				continue
			}
			k := bits.TrailingZeros64(m) >> 3
			out = out[:n+k]
			i += k
			c := buf[i]
			if c == '"' {
				if nonASCII && !utf8.Valid(buf[start:i]) {
					return false
				}
				d.i = i + 1
				*dst = d.newString(out)
				return true
			}
			if c != '\\' {
				if c < 0x20 {
					return false
				}
				nonASCII = true
				out = append(out, c)
				i++
				continue
			}
			var e byte
			switch buf[i+1] {
			case '"':
				e = '"'
			case '\\':
				e = '\\'
			case '/':
				e = '/'
			case 'n':
				e = '\n'
			case 't':
				e = '\t'
			case 'r':
				e = '\r'
			case 'b':
				e = '\b'
			case 'f':
				e = '\f'
			}
			if e == 0 {
				break // \u or an invalid escape: see below
			}
			out = append(out, e)
			i += 2
		}
		// One step the slow way: a byte, or one escape, reading more
		// of the body as needed.
		if i >= len(buf) {
			shift, ok := d.fill()
			start -= shift
			i -= shift
			if !ok {
				return false
			}
			continue
		}
		c := buf[i]
		if !special[c] {
			out = append(out, c)
			i++
			continue
		}
		switch {
		case c == '"':
			if nonASCII && !utf8.Valid(buf[start:i]) {
				return false
			}
			d.i = i + 1
			*dst = d.newString(out)
			return true
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			nonASCII = true
			out = append(out, c)
			i++
			continue
		}
		// An escape: have its longest form (a surrogate pair, 12
		// bytes) in buf if the body has it.
		for len(d.buf)-i < 12 {
			shift, ok := d.fill()
			start -= shift
			i -= shift
			if !ok {
				break
			}
		}
		buf = d.buf
		if i+1 >= len(buf) {
			return false
		}
		switch e := buf[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(buf[i:])
			if !ok {
				return false
			}
			i += 6
			// As encoding/json does: a surrogate followed by an
			// escape that completes a pair gives the pair's rune;
			// any other surrogate gives U+FFFD, and what follows it
			// is decoded on its own.
			if utf16.IsSurrogate(r) {
				pair := utf8.RuneError
				if r2, ok := hex4(buf[i:]); ok {
					if pair = utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						i += 6
					}
				}
				r = pair
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return false
		}
		i += 2
	}
}

// Constants of the byte-parallel tests on a uint64 holding eight bytes.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBytes returns a mask of the bytes of x (taken as eight bytes,
// the first in the low bits) that are special (see the table special):
// the high bit of each such byte is set, except that bytes above the
// first special one may be marked wrongly. So it is exact in telling
// whether there is one, and the lowest set bit marks the first.
func specialBytes(x uint64) uint64 {
	quote := x ^ ('"' * ones)
	backslash := x ^ ('\\' * ones)
	// Below the first special byte no borrow comes in, and every byte is
	// in 0x20..0x7f and neither '"' nor '\\': its bytes of quote - ones,
	// backslash - ones and x - 0x20*ones are then below 0x80. A quote or
	// a backslash (0 in quote or backslash) gives 0xff there, a control
	// byte 0xe0 or more in x - 0x20*ones; for a byte over 0x7f, quote's
	// and backslash's bytes are both over 0x7f and differ, so one of
	// them is over 0x80 and keeps its high bit when one is taken.
	return ((quote - ones) | (backslash - ones) | (x - 0x20*ones)) & highs
}

// plainEnd returns the position of the quote that ends the string whose
// content starts at i in buf, if the string is all in buf and has no
// special byte before that quote (see the table special).
func plainEnd(buf []byte, i int) (int, bool) {
	for i+8 <= len(buf) {
		if m := specialBytes(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			return i, buf[i] == '"'
		}
		i += 8
	}
	for ; i < len(buf); i++ {
		if c := buf[i]; special[c] {
			return i, c == '"'
		}
	}
	return i, false
}

// hex4 decodes the \uXXXX escape at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, h := range b[2:6] {
		switch {
		case h >= '0' && h <= '9':
			h -= '0'
		case h >= 'a' && h <= 'f':
			h -= 'a' - 10
		case h >= 'A' && h <= 'F':
			h -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// time decodes an expiration: a string without escapes (so that its bytes
// are its content), given to time.Time.UnmarshalText, which is what
// Time.UnmarshalJSON does with it under encoding/json. Bytes outside
// printable ASCII are left to encoding/json: they cannot be a valid time.
func (d *streamDecoder) time() (*time.Time, bool) {
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return nil, false
	}
	// d.i stays at the opening quote: fill keeps the string.
	start := d.i + 1
	i := start
	for {
		for i < len(d.buf) {
			c := d.buf[i]
			if c == '"' {
				t := d.newTime()
				if err := t.UnmarshalText(d.buf[start:i]); err != nil {
					return nil, false
				}
				d.i = i + 1
				return t, true
			}
			if c == '\\' || c < 0x20 || c >= 0x7f {
				return nil, false
			}
			i++
		}
		shift, ok := d.fill()
		start -= shift
		i -= shift
		if !ok {
			return nil, false
		}
	}
}

// digits consumes the digits of a JSON integer and returns their value,
// refusing an empty or overflowing (over uint64) number, a leading zero
// (invalid JSON), and a fraction or exponent after it (which encoding/json
// refuses for an integer field: its error is left to it).
func (d *streamDecoder) digits() (uint64, bool) {
	const cutoff = (1<<64 - 1) / 10 // 1844674407370955161, max uint64 ends in 5
	// d.i stays at the first digit: fill keeps the number.
	i := d.i
	if i+8 <= len(d.buf) {
		// The common case: fewer than eight digits, all in buf, and
		// what follows them.
		if u, n := shortInt(binary.LittleEndian.Uint64(d.buf[i:])); n > 0 {
			d.i = i + n
			return u, true
		} else if n < 0 {
			return 0, false
		}
	}
	var u uint64
	for {
		buf := d.buf
		for ; i < len(buf); i++ {
			c := buf[i] - '0'
			if c > 9 {
				break
			}
			if u >= cutoff && (u > cutoff || c > 5) {
				return 0, false
			}
			u = u*10 + uint64(c)
		}
		if i < len(buf) {
			break
		}
		shift, ok := d.fill()
		i -= shift
		if !ok {
			// The object cannot end here.
			return 0, false
		}
	}
	start := d.i
	n := i - start
	if n == 0 || (n > 1 && d.buf[start] == '0') {
		return 0, false
	}
	switch d.buf[i] {
	case '.', 'e', 'E':
		return 0, false
	}
	d.i = i
	return u, true
}

// shortInt decodes the JSON integer at the start of the eight bytes of x
// (the first in the low bits) when it has fewer than eight digits, and
// returns it and its length. The length is 0 when the integer has eight
// digits or more (the caller reads it whole), and -1 when it is to be
// refused: no digit, a leading zero, or a fraction or an exponent after it
// (see digits).
func shortInt(x uint64) (uint64, int) {
	t := x - '0'*ones
	// A byte of t is a digit's value if it is at most 9: the high bit of
	// (t + 0x76) or of t is set in the first other byte (and maybe in
	// those above it, through borrows and carries).
	m := ((t + 0x76*ones) | t) & highs
	if m == 0 {
		return 0, 0
	}
	n := bits.TrailingZeros64(m) >> 3
	if n == 0 || (n > 1 && t&0xff == 0) {
		return 0, -1
	}
	switch byte(x >> (8 * n)) {
	case '.', 'e', 'E':
		return 0, -1
	}
	// Keep the n digits, shifted up so that the first is the most
	// significant of eight (the others are zeros), and combine them in
	// pairs, fours and eights.
	t <<= 64 - 8*n
	t = (t * (1 + 10<<8)) >> 8 & 0x00ff00ff00ff00ff
	t = (t * (1 + 100<<16)) >> 16 & 0x0000ffff0000ffff
	t = (t * (1 + 10000<<32)) >> 32
	return t, n
}

// uint decodes an unsigned integer.
func (d *streamDecoder) uint() (uint64, bool) {
	return d.digits()
}

// int decodes a signed integer that fits an int64. Like every value
// decoder, it is called with the value's first byte in buf.
func (d *streamDecoder) int() (int64, bool) {
	if d.buf[d.i] != '-' {
		u, ok := d.digits()
		if !ok || u > 1<<63-1 {
			return 0, false
		}
		return int64(u), true
	}
	d.i++
	u, ok := d.digits()
	if !ok || u > 1<<63 {
		return 0, false
	}
	// The negation wraps to math.MinInt64 for 1<<63, as it should.
	return int64(-u), true
}
