"""ACR's resource log in Log Analytics: the query adapter and the import of its rows into the pipeline."""
