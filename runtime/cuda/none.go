//go:build !cuda

package cuda

import (
	"errors"

	"xlc/codegen"
	"xlc/ir"
	"xlc/runtime"
)

// errNoCUDA is every answer of a build without the cuda tag.
var errNoCUDA = errors.New("cuda: this xlc was built without CUDA (go build -tags cuda, see README)")

func available() error { return errNoCUDA }

func device() (major, minor int, name string, err error) { return 0, 0, "", errNoCUDA }

func load(*ir.Func, *codegen.Program, string) (runtime.Executable, error) { return nil, errNoCUDA }
