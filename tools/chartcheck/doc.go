// Package chartcheck tests the Helm chart in charts/roomcast: it renders
// the chart with Helm's own packages (loader, chartutil, engine: what
// `helm template` does, schema validation included), decodes every
// rendered object strictly into its Kubernetes API type, and checks the
// Deployment's settings against serve's real flag set and Validate.
//
// It lives in the tools module, beside the pinned helm tool, so that the
// main module's go.mod carries none of Helm's or Kubernetes' dependencies.
package chartcheck
