"""Plan, cache, execute and assemble: a presentation becomes scene plans, plans become
cached segments, segments become the output video (see DESIGN.md, 'Plan first')."""
