package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxExpandedNodes bounds the document after alias expansion, so that a
// "billion laughs" file is an error rather than an out-of-memory crash.
// 10,000 schedules of ~40 nodes each stay far below it.
const maxExpandedNodes = 5_000_000

// decoder walks yaml.Node trees (so every value keeps its line) and collects
// errors instead of stopping at the first.
type decoder struct {
	name  string
	errs  Errors
	zones map[string]*time.Location // LoadLocation reads a file per call: cache it
	crons map[string]string         // expression -> error message ("" when valid)
	// saeRegionBad: sae.region was invalid (and reported), so schedules
	// without a region are not reported again.
	saeRegionBad bool
}

func newDecoder(name string) *decoder {
	return &decoder{name: name, zones: map[string]*time.Location{}, crons: map[string]string{}}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, Error{File: d.name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) sortErrors() {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes data into its single YAML document's root node. It
// returns nil (with the error recorded) when the file is empty, not YAML,
// holds several documents or aliases that expand without bound.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(&yaml.Node{Line: 1}, "", "file is empty")
			return nil
		}
		d.syntaxError(err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(&next, "", "only one YAML document is allowed")
		return nil
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.errorf(&yaml.Node{Line: 1}, "", "file is empty")
			return nil
		}
		root = root.Content[0]
	}
	if _, bad, err := expandedSize(root, map[*yaml.Node]int{}, maxExpandedNodes); err != nil {
		d.errorf(bad, "", "%v", err)
		return nil
	}
	root = resolve(root)
	if isNull(root) {
		d.errorf(root, "", "file is empty")
		return nil
	}
	return root
}

func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found duplicate") ||
			strings.HasPrefix(m[2], "found undefined tag") || strings.HasPrefix(m[2], "found incompatible") {
			// yaml.v3 reports parser (not scanner) errors with a 0-based line
			// (decode.go's fail adds 1 for scanner errors only).
			line++
		}
		d.errorf(&yaml.Node{Line: line}, "", "invalid YAML: %s", m[2])
		return
	}
	d.errorf(&yaml.Node{Line: 1}, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// expandedSize counts the nodes of n with every alias expanded, failing (with
// the node at fault) once the count passes limit or an alias refers to a node
// that contains it. Only anchored nodes are memoized: they are the only alias
// targets.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, limit int) (int, *yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return 1, nil, nil
		}
		if s, ok := memo[n.Alias]; ok && s < 0 {
			return 0, n, fmt.Errorf("alias *%s refers to a node that contains it", n.Value)
		}
		n = n.Alias
	}
	if n.Anchor != "" {
		if s, ok := memo[n]; ok {
			return s, nil, nil
		}
		memo[n] = -1
	}
	size := 1
	for _, c := range n.Content {
		s, bad, err := expandedSize(c, memo, limit)
		if err != nil {
			return 0, bad, err
		}
		size += s
		if size > limit {
			return 0, c, fmt.Errorf("aliases expand to more than %d nodes", limit)
		}
	}
	if n.Anchor != "" {
		memo[n] = size
	}
	return size, nil, nil
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what n is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "an unsupported node"
}

// pair is one key and its value in a mapping; both are alias-resolved.
type pair struct {
	key  string
	k, v *yaml.Node
}

// mapping returns n's pairs in order, merge keys (<<) expanded, duplicate
// keys reported. ok is false (and the error recorded) when n is not a
// mapping; a null n is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, path string) (pairs []pair, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, got %s", describe(n))
		return nil, false
	}
	var merges []*yaml.Node
	pairs = make([]pair, 0, len(n.Content)/2)
	var seen map[string]int // only for large mappings: small ones scan
	if len(n.Content) > 32 {
		seen = make(map[string]int, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		first := -1
		if seen != nil {
			if j, dup := seen[k.Value]; dup {
				first = j
			} else {
				seen[k.Value] = len(pairs)
			}
		} else {
			for j := range pairs {
				if pairs[j].key == k.Value {
					first = j
					break
				}
			}
		}
		if first >= 0 {
			d.errorf(k, join(path, k.Value), "duplicate key (first at line %d)", pairs[first].k.Line)
			continue
		}
		pairs = append(pairs, pair{key: k.Value, k: k, v: v})
	}
	var keys map[string]bool
	if len(merges) > 0 {
		keys = make(map[string]bool, len(pairs))
		for _, p := range pairs {
			keys[p.key] = true
		}
	}
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = srcs[:0]
			for _, c := range m.Content {
				srcs = append(srcs, resolve(c))
			}
		}
		for _, src := range srcs {
			if src.Kind != yaml.MappingNode {
				d.errorf(src, path, "a merge key (<<) needs a mapping, got %s", describe(src))
				continue
			}
			sub, _ := d.mapping(src, path)
			for _, p := range sub {
				if !keys[p.key] {
					// Explicit keys and earlier merge sources win, as YAML's merge spec says.
					keys[p.key] = true
					pairs = append(pairs, p)
				}
			}
		}
	}
	return pairs, true
}

func hasKey(pairs []pair, key string) bool {
	for _, p := range pairs {
		if p.key == key {
			return true
		}
	}
	return false
}

// sequence returns n's items, alias-resolved; a null n is an empty list.
func (d *decoder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, got %s", describe(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = resolve(c)
	}
	return items, true
}

// str reads any scalar as its text (YAML's 5 or true are fine where a string
// is expected); null reads as "".
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// scalar reports a missing or non-scalar value for typed keys.
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, path, "must be %s, got %s", want, describe(n))
		return false
	}
	return true
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	if !d.scalar(n, path, "an integer") {
		return 0, false
	}
	if n.ShortTag() != "!!int" {
		d.errorf(n, path, "must be an integer, got %s %q", describe(n), n.Value)
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 0)
	if err != nil {
		d.errorf(n, path, "integer %s is out of range", n.Value)
		return 0, false
	}
	return int(v), true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if !d.scalar(n, path, "true or false") {
		return false, false
	}
	if n.ShortTag() != "!!bool" {
		d.errorf(n, path, "must be true or false, got %q", n.Value)
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

// duration reads a Go duration ("90s", "2h"); the integer 0 is accepted.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if !d.scalar(n, path, `a duration like "90s" or "2h"`) {
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, `must be a duration like "90s" or "2h", got %q`, n.Value)
		return 0, false
	}
	if v < 0 {
		d.errorf(n, path, "must not be negative")
		return 0, false
	}
	return v, true
}

// oneOf reads a string that must be one of choices.
func (d *decoder) oneOf(n *yaml.Node, path string, choices ...string) (string, bool) {
	if !d.scalar(n, path, "one of "+strings.Join(choices, ", ")) {
		return "", false
	}
	for _, c := range choices {
		if n.Value == c {
			return c, true
		}
	}
	d.errorf(n, path, "must be one of %s, got %q", strings.Join(choices, ", "), n.Value)
	return "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// credentialKeys are key names (lowercased, without _ and -) that carry a
// secret. They get a specific error instead of "unknown key", and the value
// is never echoed.
var credentialKeys = map[string]bool{
	"accesskeyid": true, "accesskeysecret": true, "accesskey": true, "secretkey": true,
	"accesssecret": true, "securitytoken": true, "ststoken": true, "secret": true,
	"password": true, "token": true, "apitoken": true, "apikey": true, "credentials": true,
	"akid": true, "aksecret": true, "bearertoken": true,
}

func normalizeKey(key string) string {
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '_' || c == '-':
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isCredentialKey(key string) bool { return credentialKeys[normalizeKey(key)] }

const credentialsMsg = "credentials do not belong in the file: use the SDK's default chain " +
	"(ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment, or a RAM role)"

const grafanaTokenMsg = "credentials do not belong in the file: put the token in an environment variable " +
	"and name it in grafana.token_env"

// unknown reports a key that is not allowed at path, with a specific message
// for credentials and misplaced keys, and a suggestion for likely typos.
func (d *decoder) unknown(p pair, path string, known []string, hints map[string]string) {
	field := join(path, p.key)
	if isCredentialKey(p.key) {
		if path == "grafana" {
			d.errorf(p.k, field, grafanaTokenMsg)
		} else {
			d.errorf(p.k, field, credentialsMsg)
		}
		return
	}
	if h, ok := hints[p.key]; ok {
		d.errorf(p.k, field, "%s", h)
		return
	}
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(p.key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		d.errorf(p.k, field, "unknown key (did you mean %q?)", best)
		return
	}
	d.errorf(p.k, field, "unknown key (known keys: %s)", strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance of two short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
