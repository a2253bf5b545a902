package client

import (
	"unicode/utf8"
)

// canonicalResponse reports whether b starts with a JSON object that
// ugorji and encoding/json decode into the same Response: see the comment
// at the top of codec.go. It errs on the side of false (which costs a
// second decode, never a wrong answer). What follows the object is not
// looked at, as a json.Decoder does not look at it.
func canonicalResponse(b []byte) bool {
	s := scanner{b: b}
	s.space()
	return s.object(responseFields)
}

// fieldKind is the JSON type a field must have.
type fieldKind uint8

const (
	kindString fieldKind = iota
	kindTime             // a string without escapes
	kindBool
	kindUint
	kindInt
	kindNode
	kindNodes
)

type field struct {
	name string
	kind fieldKind
}

var responseFields = []field{
	{"action", kindString},
	{"node", kindNode},
	{"prevNode", kindNode},
}

var nodeFields = []field{
	{"key", kindString},
	{"dir", kindBool},
	{"value", kindString},
	{"nodes", kindNodes},
	{"createdIndex", kindUint},
	{"modifiedIndex", kindUint},
	{"expiration", kindTime},
	{"ttl", kindInt},
}

// maxCanonicalDepth is the deepest node nesting checked; deeper bodies
// are left to encoding/json (ugorji's own limit is 1024 containers).
const maxCanonicalDepth = 400

type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then c.
func (s *scanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object checks an object whose keys are all among fields, each at most once.
func (s *scanner) object(fields []field) bool {
	if s.depth++; s.depth > maxCanonicalDepth {
		return false
	}
	defer func() { s.depth-- }()
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	var seen uint32
	for {
		if !s.consume('"') {
			return false
		}
		start := s.i
		for s.i < len(s.b) && s.b[s.i] != '"' {
			if c := s.b[s.i]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				return false
			}
			s.i++
		}
		if s.i >= len(s.b) {
			return false
		}
		key := s.b[start:s.i]
		s.i++
		f := -1
		for j := range fields {
			if string(key) == fields[j].name {
				f = j
				break
			}
		}
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		if !s.consume(':') {
			return false
		}
		s.space()
		if !s.value(fields[f].kind) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

func (s *scanner) value(k fieldKind) bool {
	// A null leaves a field at its zero value with both decoders, as
	// long as the field was not set before: duplicates are refused.
	if s.literal("null") {
		return true
	}
	switch k {
	case kindString:
		return s.str(true)
	case kindTime:
		return s.str(false)
	case kindBool:
		return s.literal("true") || s.literal("false")
	case kindUint:
		return s.integer(false)
	case kindInt:
		return s.integer(true)
	case kindNode:
		return s.object(nodeFields)
	case kindNodes:
		if !s.consume('[') {
			return false
		}
		if s.consume(']') {
			return true
		}
		for {
			if !s.object(nodeFields) {
				return false
			}
			if s.consume(',') {
				continue
			}
			return s.consume(']')
		}
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// str checks a string in valid UTF-8 without raw control characters, and
// with escapes (other than of surrogates) only when escapes is set.
func (s *scanner) str(escapes bool) bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			s.i += n
		case c == '\\':
			if !escapes || s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				var r rune
				for _, h := range s.b[s.i+2 : s.i+6] {
					switch {
					case h >= '0' && h <= '9':
						r = r<<4 | rune(h-'0')
					case h >= 'a' && h <= 'f':
						r = r<<4 | rune(h-'a'+10)
					case h >= 'A' && h <= 'F':
						r = r<<4 | rune(h-'A'+10)
					default:
						return false
					}
				}
				if r >= 0xD800 && r <= 0xDFFF {
					return false
				}
				s.i += 6
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

// integer checks a JSON integer (no fraction, no exponent) that fits a
// uint64, or an int64 when signed.
func (s *scanner) integer(signed bool) bool {
	neg := false
	if signed && s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	var u uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if u > (1<<64-1-d)/10 {
			return false
		}
		u = u*10 + d
		s.i++
	}
	n := s.i - start
	if n == 0 || (n > 1 && s.b[start] == '0') {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	if signed {
		if neg {
			return u <= 1<<63
		}
		return u < 1<<63
	}
	return true
}
