"""PixelMed (Java) as a backend: its command-line mains run with `java -cp`."""
