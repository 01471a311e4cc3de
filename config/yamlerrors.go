package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// durationHelp says how to write a duration, for every message about one.
const durationHelp = "use a number with a unit: ns, us, ms, s, m, h — e.g. 72h"

var (
	// lineRE splits yaml.v3's "line N: message".
	lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
	// unknownFieldRE is yaml.v3's KnownFields error.
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
)

// nameKeys rewrites yaml.v3's "line N: ..." messages so that each starts with
// the dotted setting at that line (e.g. keys.rotation_period, or
// clients[0].secret_sha256) and says how to put it right: an unknown key gets
// the nearest known one ("did you mean ..."), a bad duration the units.
func nameKeys(raw []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(raw, &root) != nil {
		return err
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		msgs = append(msgs, explainYAML(&root, m))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// explainYAML rewrites one yaml.v3 error message (see nameKeys).
func explainYAML(root *yaml.Node, m string) string {
	sm := lineRE.FindStringSubmatch(m)
	if sm == nil {
		return m
	}
	line, _ := strconv.Atoi(sm[1])
	key, val := keyAtLine(root, line, "")
	if key == "" {
		return m
	}
	at := fmt.Sprintf(" (line %d)", line)
	if u := unknownFieldRE.FindStringSubmatch(sm[2]); u != nil {
		return key + ": " + unknownKey(u[1], u[2]) + at
	}
	if strings.HasSuffix(sm[2], "into time.Duration") && val != nil && val.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%s: %q is not a duration; %s%s", key, val.Value, durationHelp, at)
	}
	return key + ": " + sm[2] + at
}

// unknownKey explains an unknown key name in the struct type typ (as yaml.v3
// names it, e.g. config.Keys).
func unknownKey(name, typ string) string {
	if typ == "config.Client" && (name == "secret" || name == "client_secret") {
		return "a client secret is never written in the configuration file; give its SHA-256 as secret_sha256 " +
			"(print it with: keygate clients hash-secret)"
	}
	known := knownKeys()[typ]
	if s := closest(name, known); s != "" {
		return fmt.Sprintf("unknown setting; did you mean %s?", s)
	}
	if p := knownPaths()[name]; p != "" {
		return fmt.Sprintf("unknown setting here; did you mean %s?", p)
	}
	if len(known) == 0 {
		return "unknown setting"
	}
	return "unknown setting; the settings here are " + strings.Join(known, ", ")
}

// knownKeys maps each configuration struct type, named as yaml.v3 names it,
// to its keys.
func knownKeys() map[string][]string {
	m := map[string][]string{}
	walkKeys(reflect.TypeFor[Config](), "", func(t reflect.Type, key, _ string) {
		m[t.String()] = append(m[t.String()], key)
	})
	return m
}

// knownPaths maps each key of a section (not of a client) to its dotted path,
// e.g. rotation_period to keys.rotation_period, for a key in the wrong place.
func knownPaths() map[string]string {
	m := map[string]string{}
	walkKeys(reflect.TypeFor[Config](), "", func(_ reflect.Type, key, path string) {
		if strings.Contains(path, "[]") {
			return
		}
		if _, seen := m[key]; seen {
			m[key] = "" // in two sections: suggest neither
			return
		}
		m[key] = path
	})
	return m
}

// walkKeys calls fn for every yaml key of struct type t and of the structs
// it holds (slices of them included, their path marked []).
func walkKeys(t reflect.Type, prefix string, fn func(t reflect.Type, key, path string)) {
	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		fn(t, key, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft, path = ft.Elem(), path+"[]"
		}
		if ft.Kind() == reflect.Struct {
			walkKeys(ft, path, fn)
		}
	}
}

// closest returns the candidate nearest to name by edit distance, if it is
// near enough to be a typo of it (at most 2 edits, and fewer than half of
// name); "" if none is.
func closest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), c); d < bestD && 2*d < len(name) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyAtLine returns the dotted path of the deepest key on line, and its value.
func keyAtLine(n *yaml.Node, line int, prefix string) (string, *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k, v := keyAtLine(c, line, prefix); k != "" {
				return k, v
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if k, v := keyAtLine(c, line, fmt.Sprintf("%s[%d]", prefix, i)); k != "" {
				return k, v
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			path := key.Value
			if prefix != "" {
				path = prefix + "." + key.Value
			}
			if k, v := keyAtLine(val, line, path); k != "" {
				return k, v
			}
			if key.Line == line {
				return path, val
			}
		}
	}
	return "", nil
}
