"""`python -m bench`: run the benchmark."""

from bench.run import main

if __name__ == "__main__":
    main()
