// Package specfile reads the YAML files users write (expected paths, allow-lists,
// NetworkPolicies) into position-carrying nodes, so that every error names the file, line and
// column of the mistake.
package specfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake at a position of a file.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg) }

// At returns an error at node n's position.
func At(file string, n *yaml.Node, format string, args ...any) error {
	return &Error{File: file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Documents parses every YAML document of data. A syntax error is reported at its line; the
// column is that of the first tab on the line (YAML forbids them) or of its first non-blank
// character.
func Documents(file string, data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		if len(n.Content) > 0 {
			docs = append(docs, n.Content[0])
		}
	}
}

func syntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: file, Line: 1, Column: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	col := 1
	lines := strings.Split(string(data), "\n")
	if line >= 1 && line <= len(lines) {
		l := lines[line-1]
		if i := strings.IndexByte(l, '\t'); i >= 0 {
			col = i + 1
		} else if i := len(l) - len(strings.TrimLeft(l, " ")); i < len(l) {
			col = i + 1
		}
	}
	return &Error{File: file, Line: line, Column: col, Msg: m[2]}
}

// Fields checks that mapping n has only the allowed keys and returns its values by key.
func Fields(file string, n *yaml.Node, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, At(file, n, "expected a mapping with keys %s", strings.Join(allowed, ", "))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || k.Value == a
		}
		if !ok {
			return nil, At(file, k, "unknown field %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, At(file, k, "duplicate field %q", k.Value)
		}
		out[k.Value] = n.Content[i+1]
	}
	return out, nil
}

// Locate returns the node at path (mapping keys and sequence indexes) below n, or the deepest
// node found on the way.
func Locate(n *yaml.Node, path []string) *yaml.Node {
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return n
		}
		n, path = next, path[1:]
		if len(path) == 0 {
			return n
		}
	}
	return n
}

// FindKey returns the first mapping key named key anywhere below n.
func FindKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if f := FindKey(c, key); f != nil {
			return f
		}
	}
	return nil
}

// Path is an expected or allowed path "from -> to:port" (port 0: any).
type Path struct {
	From string `json:"from"`
	To   string `json:"to"`
	Port uint16 `json:"port"`
	Line int    `json:"line,omitempty"`
}

// ParsePath reads "A -> B:port" (also "A → B:port"; ":port" optional when anyPort).
func ParsePath(s string, anyPort bool) (Path, error) {
	s = strings.ReplaceAll(s, "→", "->")
	from, to, ok := strings.Cut(s, "->")
	if !ok {
		return Path{}, fmt.Errorf("%q is not a path like \"ns/a -> ns/b:8080\"", s)
	}
	p := Path{From: strings.TrimSpace(from), To: strings.TrimSpace(to)}
	if i := strings.LastIndexByte(p.To, ':'); i >= 0 {
		n, err := strconv.ParseUint(p.To[i+1:], 10, 16)
		if err != nil || n == 0 {
			return Path{}, fmt.Errorf("bad port %q in %q: want 1 to 65535", p.To[i+1:], s)
		}
		p.To, p.Port = p.To[:i], uint16(n)
	} else if !anyPort {
		return Path{}, fmt.Errorf("%q has no port: write \"%s:PORT\"", s, p.To)
	}
	if p.From == "" || p.To == "" {
		return Path{}, fmt.Errorf("%q: both ends of the arrow need a name", s)
	}
	return p, nil
}

// PathNode reads a path written as a string or as a mapping {from, to, port}.
func PathNode(file string, n *yaml.Node, anyPort bool) (Path, error) {
	if n.Kind == yaml.ScalarNode {
		p, err := ParsePath(n.Value, anyPort)
		if err != nil {
			return Path{}, At(file, n, "%v", err)
		}
		p.Line = n.Line
		return p, nil
	}
	f, err := Fields(file, n, "from", "to", "port")
	if err != nil {
		return Path{}, err
	}
	p := Path{Line: n.Line}
	for _, k := range []string{"from", "to"} {
		v, ok := f[k]
		if !ok || v.Kind != yaml.ScalarNode || v.Value == "" {
			return Path{}, At(file, n, "path needs %q", k)
		}
		if k == "from" {
			p.From = v.Value
		} else {
			p.To = v.Value
		}
	}
	if v, ok := f["port"]; ok {
		port, err := strconv.ParseUint(v.Value, 10, 16)
		if err != nil || port == 0 {
			return Path{}, At(file, v, "bad port %q: want 1 to 65535", v.Value)
		}
		p.Port = uint16(port)
	} else if !anyPort {
		return Path{}, At(file, n, "path needs \"port\"")
	}
	return p, nil
}
