"""What the tests, the benchmark (bench/) and the chaos run (chaos/) share to set up
their surroundings: free ports, a switchable proxy, RabbitMQ nodes of their own (a TLS
node, a cluster) and a PostgreSQL standby, service processes, and throw-away regions
on the machine's broker and database. Never part of the product (not in the image)."""
