package main

import (
	"context"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

func runServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "serve", "")
	cfg := config.RegisterServe(fs)
	if err := parseFlags(fs, env, args, config.ServeCompat); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := cfg.ReadSecrets(env.getenv); err != nil {
		return usagef("invalid settings:\n%w", err)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("invalid settings:\n%w", err)
	}
	log := config.NewLogger(env.stderr, cfg.LogFormat, cfg.LogLevel)
	log.Info("roomcast starting", "version", buildVersion())
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
