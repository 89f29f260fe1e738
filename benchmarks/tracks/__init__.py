"""The recipe tracks: controlled sentiment (the evidence bench) and the annotator's robustness."""
