package auth

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// Reasons lists every label Reason gives an error, each once, so that the
// counter of refusals by reason starts every series it will ever have.
func TestReasonsListsEveryLabel(t *testing.T) {
	labels := Reasons()
	errs := []error{errors.New("not one of ours")}
	for _, r := range reasons {
		errs = append(errs, fmt.Errorf("wrapped: %w", r.err))
	}
	for _, err := range errs {
		if got := Reason(err); !slices.Contains(labels, got) {
			t.Errorf("Reason(%v) = %q, which Reasons() %v lacks", err, got, labels)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(labels)))) != len(labels) || len(labels) != len(errs) {
		t.Errorf("Reasons() = %v: want %d distinct labels", labels, len(errs))
	}
	if slices.Contains(labels, Reason(nil)) {
		t.Errorf("Reasons() lists %q, which is no refusal", Reason(nil))
	}
}
