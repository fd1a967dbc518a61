from lossaudit.cli import main

main()
