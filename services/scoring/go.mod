module github.com/loanflow/loanflow/services/scoring

go 1.26
replace github.com/loanflow/loanflow/contracts => ../../contracts
replace github.com/loanflow/loanflow/pkg => ../../pkg
