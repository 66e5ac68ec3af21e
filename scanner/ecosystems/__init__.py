"""What acrguard knows about each ecosystem, in one record per ecosystem. Imports only `versions` and `model`.

record.py       `Ecosystem` (OSV name, os/language, version scheme, name normalisation, purl type, release
                rule, package manager and its upgrade command, advisory naming, osv.dev archives),
                `Release`, `Manager`
distributions.py the distributions' records, and what an image's os-release says (OSV ecosystem, purl
                namespace and distro, package manager)
release_rules.py the release rules of Red Hat (CPE product streams), SUSE (product and module names, by code
                stream and service pack) and openSUSE (Leap release, Tumbleweed)
languages.py    the language ecosystems' records
catalog.py      all records, and the lookups by OSV name, package kind and manager name
ordering.py     version ordering by ecosystem name: compare, is_valid, sort_key (re-exported here)

Adding an ecosystem whose version scheme exists: one record (distributions.py or languages.py), a detector
that reports its packages (scanner/inventory/detectors), and tests.
"""

from scanner.ecosystems.ordering import SCHEMES, compare, is_valid, scheme_for, sort_key

__all__ = ["SCHEMES", "compare", "is_valid", "scheme_for", "sort_key"]
