"""The request pipeline (DESIGN.md §1): a named, ordered chain of small stages."""
