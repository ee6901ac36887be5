// kube-apiserver from k8s.io/kubernetes, built through this wrapper module because the
// kubernetes module's own go.mod replaces its staging modules with local paths, which
// `go install module@version` refuses. scripts/install-test.sh writes the go.mod.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob, as upstream's main

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
