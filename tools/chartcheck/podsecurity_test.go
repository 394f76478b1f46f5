package chartcheck

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// checkPodSecurity evaluates the Deployment's pod template with the
// Kubernetes Pod Security Admission's own checks at the "restricted"
// level, latest version: what a namespace labelled
// pod-security.kubernetes.io/enforce=restricted would admit.
func checkPodSecurity(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	res := psapolicy.AggregateCheckResults(ev.EvaluatePod(lv, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
	if !res.Allowed {
		t.Errorf("the pod does not pass the restricted Pod Security Standard: %s", res.ForbiddenDetail())
	}
}
