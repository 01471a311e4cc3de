// Package version says which Keygate this binary is: the module version or
// VCS revision Go recorded at build time, or what the build set with
//
//	go build -ldflags "-X github.com/keygate/keygate/internal/version.override=v1.2.3"
//
// `keygate --version` prints it and the keygate_build_info metric carries it.
package version

import (
	"runtime"
	"runtime/debug"
)

// override, when set at link time (-ldflags -X), is the version reported.
var override string

// Info is what the binary knows about its build.
type Info struct {
	Version   string // override, else the module version, else "devel"
	Revision  string // vcs.revision, "" if not recorded
	Modified  bool   // vcs.modified: built from a tree with uncommitted changes
	GoVersion string // runtime.Version()
}

// Get reads the build information.
func Get() Info {
	in := Info{Version: "devel", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "devel" && in.Revision != "" {
		in.Version += "+" + short(in.Revision)
		if in.Modified {
			in.Version += "-dirty"
		}
	}
	if override != "" {
		in.Version = override
	}
	return in
}

// String is the one-line form `keygate --version` prints after the name.
func (in Info) String() string {
	s := in.Version + " (" + in.GoVersion
	if in.Revision != "" {
		s += ", revision " + short(in.Revision)
		if in.Modified {
			s += ", modified"
		}
	}
	return s + ")"
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
