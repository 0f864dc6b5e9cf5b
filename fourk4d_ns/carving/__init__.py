"""Visual hulls: ``visual_hull`` carves one frame from masks (pure arrays); ``capture`` carves every
frame of a capture's chosen views and caches the result in the capture folder."""
