// Command etcd is the etcd server built from its published Go module. The etcd server module
// replaces its sibling modules with local paths, so it cannot be `go install`ed directly; this
// tiny main module depends on it instead and calls its entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
