//! Template processing: parameters, generator expressions, substitution and OpenShift
//! translation. Pure functions, no cluster.
