"""`yuqing serve`: the incident page alerts link to, and the publicity office's console."""
