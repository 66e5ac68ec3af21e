"""What acrguard knows about each ecosystem and distribution (OSV names, purl namespaces). Imports only `model`."""
