// etcd from go.etcd.io/etcd/server/v3, built through this wrapper module because etcd's own
// go.mod replaces its sibling modules with local paths, which `go install module@version`
// refuses. scripts/install-test.sh writes the go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
