"""The inbox domain: input folders dropped into the inbox become input sets, plan versions and
plan runs. Its definitions: :mod:`.definitions`."""
