module github.com/loanflow/loanflow/pkg

go 1.26

replace github.com/loanflow/loanflow/contracts => ../contracts
