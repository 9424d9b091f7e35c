"""The staff UI's own widgets: camera thumbnail, level meter, check rows."""
