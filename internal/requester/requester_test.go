package requester

import (
	"context"
	"testing"
)

func TestOfReturnsWhatWithSet(t *testing.T) {
	if got := Of(context.Background()); got != nil {
		t.Fatalf("Of(background) = %v, want nil", got)
	}
	type conn struct{ n int }
	a, b := &conn{1}, &conn{2}
	ctx := With(context.Background(), a)
	if got := Of(ctx); got != a {
		t.Fatalf("Of = %v, want %v", got, a)
	}
	if got := Of(With(ctx, b)); got != b {
		t.Fatalf("the innermost requester wins: got %v, want %v", got, b)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if got := Of(cctx); got != a {
		t.Fatalf("a derived context keeps the requester: got %v", got)
	}
}
