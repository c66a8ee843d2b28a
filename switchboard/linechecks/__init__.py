"""The line check (线路巡检): the probe calls each configured line daily and on demand; results kept per line."""
