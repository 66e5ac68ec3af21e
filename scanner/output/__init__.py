"""Output formats for inventories."""
