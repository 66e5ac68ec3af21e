from tests.azure.manage_support import manage_env, vulndb_path  # noqa: F401 - the fixtures these tests use
