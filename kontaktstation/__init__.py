"""The product's command line (``kontaktstation``), the demo and the self-check: composition
roots above every other package."""
