module slipway.dev/dev/gateway-api

// The Gateway API's CRDs (standard channel) for the dev cluster: `slip expose --gateway` makes
// HTTPRoutes, and its tests install these definitions (dev/build-tools.sh gateway-api copies them
// out of the module). No controller is installed; a route's traffic needs one.
go 1.26.0

require sigs.k8s.io/gateway-api v1.2.1
