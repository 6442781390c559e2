import BertKit
print("finetune")
