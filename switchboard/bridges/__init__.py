"""Conference bridge routes: list, convene, roll call and moderator controls."""
