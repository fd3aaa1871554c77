module github.com/loanflow/loanflow/services/console

go 1.26.0

replace github.com/loanflow/loanflow/contracts => ../../contracts

replace github.com/loanflow/loanflow/pkg => ../../pkg

require github.com/loanflow/loanflow/contracts v0.0.0-00010101000000-000000000000
