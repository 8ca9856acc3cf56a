// Package atomicfile writes files so that a reader, or a run killed midway,
// sees either the old file or the whole new one.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path so that a reader, or a run killed
// midway, sees either the old file or the whole new one: it writes a
// temporary file in the same folder, syncs it, renames it over path, and
// syncs the folder.
//
// A symbolic link is followed, so the file it names is replaced and the link
// stays. A path that names something other than a regular file — a device
// such as /dev/null or /dev/stdout, a pipe — is written in place: renaming
// over it would replace the device with a file.
func Write(path string, data []byte, perm os.FileMode) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
		if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
			if st.IsDir() {
				return fmt.Errorf("%s is a directory", path)
			}
			return os.WriteFile(path, data, perm)
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
