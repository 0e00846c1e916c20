"""Tags for a photo: concepts and objects it shows, from models that run on LiteRT and numpy."""
