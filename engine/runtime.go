// Package engine runs ONNX models with ONNX Runtime: it finds and loads the
// runtime library, opens sessions, and serves tensor models through a
// dynamic batching queue. It knows nothing about HTTP or the config file.
package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// libraryEnv is the environment variable that names the ONNX Runtime library.
const libraryEnv = "ONNXRUNTIME_LIB"

// packagedLibraryDir is where the deb and rpm packages install the library.
const packagedLibraryDir = "/usr/lib/aiassist"

// libraryNames are tried in each candidate directory, most specific first.
var libraryNames = []string{"libonnxruntime.so", "libonnxruntime.so.1"}

// FindLibrary returns the ONNX Runtime shared library to load. The order is:
// the configured path, $ONNXRUNTIME_LIB, the packaged path, then the build
// folder next to the binary or above the working directory. The error lists
// every path tried, so an operator sees where to put the file.
func FindLibrary(configured string) (string, error) {
	var tried []string
	try := func(p string) bool {
		if p == "" {
			return false
		}
		tried = append(tried, p)
		st, err := os.Stat(p)
		return err == nil && !st.IsDir()
	}
	if configured != "" {
		if try(configured) {
			return configured, nil
		}
		return "", fmt.Errorf("ONNX Runtime library %q (runtime.library) does not exist", configured)
	}
	if env := os.Getenv(libraryEnv); env != "" {
		if try(env) {
			return env, nil
		}
		return "", fmt.Errorf("ONNX Runtime library %q ($%s) does not exist", env, libraryEnv)
	}
	var dirs []string
	dirs = append(dirs, packagedLibraryDir)
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "build", "onnxruntime"))
	}
	if root := moduleRoot(); root != "" {
		dirs = append(dirs, filepath.Join(root, "build", "onnxruntime"))
	}
	for _, d := range dirs {
		for _, n := range libraryNames {
			if p := filepath.Join(d, n); try(p) {
				return filepath.Clean(p), nil
			}
		}
	}
	return "", fmt.Errorf("cannot find the ONNX Runtime library; tried: %s. "+
		"Set runtime.library in the config or $%s, or run packaging/fetch-onnxruntime.sh",
		strings.Join(tried, ", "), libraryEnv)
}

// moduleRoot walks up from the working directory to the folder holding
// go.mod, so tests and `go run` find the library fetched into build/.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Runtime is the process-wide ONNX Runtime environment. ONNX Runtime allows
// one environment per process, so Init hands out the same Runtime each time.
type Runtime struct {
	library string
	version string
}

var (
	initMu  sync.Mutex
	current *Runtime
)

// RuntimeOptions configures the process-wide environment.
type RuntimeOptions struct {
	// Library is the configured library path; empty means search.
	Library string
}

// Init loads the ONNX Runtime library and creates the environment. Later
// calls return the same Runtime; asking for a different library then is an
// error because a loaded library cannot be swapped without a restart.
func Init(opts RuntimeOptions) (*Runtime, error) {
	initMu.Lock()
	defer initMu.Unlock()
	if current != nil {
		if opts.Library != "" && !sameFile(opts.Library, current.library) {
			return nil, fmt.Errorf("runtime.library changed from %q to %q: restart the daemon to load another ONNX Runtime", current.library, opts.Library)
		}
		return current, nil
	}
	lib, err := FindLibrary(opts.Library)
	if err != nil {
		return nil, err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("cannot initialise ONNX Runtime from %q: %w", lib, err)
	}
	current = &Runtime{library: lib, version: ort.GetVersion()}
	return current, nil
}

func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return os.SameFile(sa, sb)
}

// Library is the path of the loaded shared library.
func (r *Runtime) Library() string { return r.library }

// Version is the ONNX Runtime version string reported by the library.
func (r *Runtime) Version() string { return r.version }
