"""Stage 0, shared by every stage: errors, spec parsing, validation of counts, seeds, dtypes and
devices, quadrature, the environment record. Modules here import nothing else of initsuite."""
