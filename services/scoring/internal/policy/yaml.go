package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// The policy file is read by walking yaml.v3's node tree rather than by decoding into structs
// with KnownFields: the walk knows each value's key path and line, so every error reads
// "file:line: loan.max_dti must ...", a missing key is reported at its section's line, and an
// unknown key is named by its full path.

// parseYAML parses data as exactly one YAML document and returns its root node.
func parseYAML(name string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: the policy is empty", name)
		}
		return nil, syntaxError(name, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return doc.Content[0], nil
	case err != nil:
		return nil, syntaxError(name, err)
	default:
		return nil, fmt.Errorf("%s:%d: a policy file holds one YAML document, found another", name, next.Line)
	}
}

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewrites yaml.v3's "yaml: line N: msg" as "name:N: msg". yaml.v3 leaves the line
// out when the problem is on the first line.
func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: invalid YAML: %s", name, m[1], m[2])
	}
	return fmt.Errorf("%s:1: invalid YAML: %s", name, strings.TrimPrefix(msg, "yaml: "))
}

// reader collects every error of one file, so that an operator fixes them in one pass.
type reader struct {
	name string
	errs []error
}

func (r *reader) errorf(line int, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s:%d: %s", r.name, line, fmt.Sprintf(format, args...)))
}

func (r *reader) err() error { return errors.Join(r.errs...) }

// mapping is one YAML mapping of the policy. A mapping that is missing or invalid has a nil
// node: its getters then return zero values without further errors, the first one said it.
type mapping struct {
	r     *reader
	node  *yaml.Node
	path  string
	line  int      // where the section starts: its key's line, or the document's first line
	keys  []string // in file order
	vals  map[string]*yaml.Node
	lines map[string]int // the line of each key
}

func newMapping(r *reader, path string, line int) *mapping {
	return &mapping{r: r, path: path, line: line, vals: map[string]*yaml.Node{}, lines: map[string]int{}}
}

// root reads the document's top mapping, allowing only the keys listed.
func (r *reader) root(n *yaml.Node, keys ...string) *mapping {
	return r.mapping(n, "", "the policy", n.Line, keys)
}

// mapping checks that n, the section starting at line, is a mapping with unique keys, each one
// of keys (any key when keys is nil).
func (r *reader) mapping(n *yaml.Node, path, what string, line int, keys []string) *mapping {
	m := newMapping(r, path, line)
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		r.errorf(n.Line, "%s must be a mapping of keys to values", what)
		return m
	}
	m.node = n
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			r.errorf(k.Line, "%s: keys must be plain names", what)
		case keys != nil && !slices.Contains(keys, key):
			r.errorf(k.Line, "unknown key %s (allowed: %s)", m.sub(key), strings.Join(keys, ", "))
		case m.vals[key] != nil:
			r.errorf(k.Line, "%s appears twice (first on line %d)", m.sub(key), m.lines[key])
		default:
			m.keys = append(m.keys, key)
			m.vals[key] = v
			m.lines[key] = k.Line
		}
	}
	return m
}

// resolve follows a YAML alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// sub is the full path of key below m.
func (m *mapping) sub(key string) string {
	if m.path == "" {
		return key
	}
	return m.path + "." + key
}

// value returns the node under key, or nil after reporting it missing at the section's line.
func (m *mapping) value(key string) *yaml.Node {
	if m.node == nil {
		return nil
	}
	n, ok := m.vals[key]
	if !ok {
		m.r.errorf(m.line, "%s is required", m.sub(key))
		return nil
	}
	return resolve(n)
}

// has reports whether the optional key is present.
func (m *mapping) has(key string) bool {
	_, ok := m.vals[key]
	return ok
}

// fail reports a rule broken by the value of key.
func (m *mapping) fail(n *yaml.Node, key, rule string, args ...any) {
	m.r.errorf(n.Line, "%s %s", m.sub(key), fmt.Sprintf(rule, args...))
}

// child reads the mapping under key, allowing only the keys listed.
func (m *mapping) child(key string, keys ...string) *mapping {
	n := m.value(key)
	if n == nil {
		return newMapping(m.r, m.sub(key), 0)
	}
	return m.r.mapping(n, m.sub(key), m.sub(key), m.lines[key], keys)
}

// scalar returns the value of key when it is a scalar with one of the tags, else nil.
func (m *mapping) scalar(key, want string, tags ...string) *yaml.Node {
	n := m.value(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.Tag) {
		m.fail(n, key, "must be %s", want)
		return nil
	}
	return n
}

// text returns a YAML number as written, without the digit separators yaml.v3 allows.
func text(n *yaml.Node) string { return strings.ReplaceAll(n.Value, "_", "") }

// str reads a non-empty string.
func (m *mapping) str(key string) (string, *yaml.Node) {
	n := m.scalar(key, "a string", "!!str", "!!int", "!!float")
	if n == nil {
		return "", nil
	}
	if strings.TrimSpace(n.Value) == "" {
		m.fail(n, key, "must not be empty")
		return "", nil
	}
	return n.Value, n
}

// money reads an amount of roubles with at most two decimals, exactly.
func (m *mapping) money(key string) (partnerapi.Money, *yaml.Node) {
	const want = "a number of roubles with at most 2 decimals"
	n := m.scalar(key, want, "!!int", "!!float")
	if n == nil {
		return 0, nil
	}
	v, err := partnerapi.ParseMoney(text(n))
	if err != nil {
		m.fail(n, key, "must be %s", want)
		return 0, nil
	}
	return v, n
}

// integer reads a whole number.
func (m *mapping) integer(key string) (int, *yaml.Node) {
	n := m.scalar(key, "a whole number", "!!int")
	if n == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(text(n))
	if err != nil {
		m.fail(n, key, "must be a whole number")
		return 0, nil
	}
	return v, n
}

// number reads a finite decimal number.
func (m *mapping) number(key string) (float64, *yaml.Node) {
	n := m.scalar(key, "a number", "!!int", "!!float")
	if n == nil {
		return 0, nil
	}
	v, err := strconv.ParseFloat(text(n), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		m.fail(n, key, "must be a finite number")
		return 0, nil
	}
	return v, n
}

// share reads a fraction between 0 and 1 with at most four decimals, in basis points
// (1/10000), so that debt-to-income arithmetic stays in whole kopecks.
func (m *mapping) share(key string, allowZero bool) (int64, *yaml.Node) {
	v, n := m.number(key)
	if n == nil {
		return 0, nil
	}
	if v < 0 || v > 1 || (!allowZero && v == 0) {
		if allowZero {
			m.fail(n, key, "must be between 0 and 1")
		} else {
			m.fail(n, key, "must be greater than 0 and at most 1")
		}
		return 0, nil
	}
	bp := math.Round(v * basis)
	if math.Abs(v*basis-bp) > 1e-6 {
		m.fail(n, key, "must have at most 4 decimals")
		return 0, nil
	}
	return int64(bp), n
}
